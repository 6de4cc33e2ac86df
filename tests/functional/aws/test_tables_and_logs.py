"""aws/tables.py and aws/logs.py against the local cloud: finding a retained table by
name and tags, deleting it twice, and exact log-group names only."""

from __future__ import annotations

import uuid
from typing import Any

import boto3

from amiforge.aws import logs as logs_api
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


def test_only_exact_log_group_names_count(local_cloud: Any) -> None:
    logs = boto3.client("logs")
    name = f"/aws/lambda/logs-{uuid.uuid4().hex[:8]}-detect"
    logs.create_log_group(logGroupName=name)
    logs.create_log_group(logGroupName=name + "-other")
    assert logs_api.existing_groups(logs, [name, name + "-missing"]) == [name]
    logs_api.delete_group(logs, name)
    assert logs_api.existing_groups(logs, [name]) == []
