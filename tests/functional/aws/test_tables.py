"""aws/tables.py against the local cloud: finding a retained table by name and tags, and
deleting it twice."""

from __future__ import annotations

import uuid
from typing import Any

import boto3

from amiforge.aws import tables as tables_api


def test_tables_are_found_by_prefix_and_tags_and_deleted_once(local_cloud: Any) -> None:
    ddb = boto3.client("dynamodb")
    stack = f"tables-{uuid.uuid4().hex[:8]}"
    name = f"{stack}-CatalogTable-ABC"
    ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     Tags=[{"Key": "amiforge:table", "Value": "catalog"}])
    assert tables_api.names_starting(ddb, f"{stack}-") == [name]
    assert tables_api.tags_of(ddb, name) == {"amiforge:table": "catalog"}
    assert tables_api.exists(ddb, name)
    assert tables_api.delete(ddb, name) is True
    assert not tables_api.exists(ddb, name)
    assert tables_api.delete(ddb, name) is False
