"""Tables for the adapter tests, made from the template's own definitions (keys and
indexes exactly as deployed)."""

from __future__ import annotations

import uuid
from typing import Any

import yaml

from amiforge.deploy.stack import template_text


class _AnyTag(yaml.SafeLoader):
    """Reads the template's plain structure; intrinsic tags become None."""


_AnyTag.add_multi_constructor("!", lambda _loader, _suffix, _node: None)


def table_spec(logical_id: str, *, indexes: bool = True) -> dict[str, Any]:
    """CreateTable arguments for the template's ``logical_id`` table (without its GSIs:
    a table retained by an older stack)."""
    props = yaml.load(template_text(), Loader=_AnyTag)["Resources"][logical_id]["Properties"]
    spec: dict[str, Any] = {"BillingMode": "PAY_PER_REQUEST", "KeySchema": props["KeySchema"],
                            "AttributeDefinitions": props["AttributeDefinitions"]}
    if indexes:
        spec["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    else:
        keys = {k["AttributeName"] for k in props["KeySchema"]}
        spec["AttributeDefinitions"] = [a for a in props["AttributeDefinitions"]
                                        if a["AttributeName"] in keys]
    return spec


def new_table(dynamodb: Any, logical_id: str, *, indexes: bool = True) -> str:
    name = f"{logical_id.lower()}-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(TableName=name, **table_spec(logical_id, indexes=indexes))
    return name
