"""Tables for the adapter tests, made from the template's own definitions (keys and
indexes exactly as deployed)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import yaml

from amiforge.aws.catalog import AVAILABLE, FAILED, PRUNED, Catalog
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


# -- catalogs of a given size (test_catalog.py, test_in_flight.py) -----------------------


def catalog_table_spec(*, indexes: bool = True) -> dict[str, Any]:
    return table_spec("CatalogTable", indexes=indexes)


def new_catalog(dynamodb: Any, *, indexes: bool = True) -> Catalog:
    table = f"catalog-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(TableName=table, **catalog_table_spec(indexes=indexes))
    return Catalog(dynamodb, table)


def builds(recipe: str, count: int, start: int = 0) -> Iterator[dict[str, Any]]:
    """``count`` finished builds of ``recipe``, oldest first: PRUNED, then the newest
    three AVAILABLE (retention keeps a few), the newest one FAILED."""
    for n in range(start, start + count):
        status = (FAILED if n == start + count - 1 else
                  AVAILABLE if n >= start + count - 4 else PRUNED)
        key = f"{recipe}-{n:020x}"
        record = {"recipe": recipe, "build_id": key, "build_key": key, "status": status,
                  "created_at": f"2024-01-01T00:00:00.{n:06d}Z", "image_id": f"ami-{n:017x}"}
        if status == AVAILABLE:
            record["available_recipe"] = recipe
        yield record


def reads(catalog: Catalog, fn: Any) -> tuple[Any, int]:
    catalog.items_read = 0
    result = fn()
    return result, catalog.items_read
