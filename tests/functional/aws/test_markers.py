"""aws/markers.py on the local cloud: a partition read in pages, and a marker removed
only while it holds the answered token."""

from __future__ import annotations

from typing import Any

import pytest
from tests.functional.aws.dynamo_tables import new_table

from amiforge.aws.dynamo import deserialize, serialize
from amiforge.aws.markers import partition_items, remove_if_token
from amiforge.errors import AwsCallFailed

PARTITION = "#test-waits"


def put(db: Any, table: str, key: str, token: str, partition: str = PARTITION) -> None:
    db.put_item(TableName=table, Item=serialize(
        {"recipe": partition, "build_id": key, "task_token": token}))


def test_a_partition_is_read_whole_and_only_that_partition(dynamodb: Any) -> None:
    table = new_table(dynamodb, "CatalogTable", indexes=False)
    for n in range(3):
        put(dynamodb, table, f"k{n}", f"t{n}")
    put(dynamodb, table, "other", "t", partition="web")  # a recipe's build: not a marker
    read = sorted(deserialize(i)["build_id"] for i in partition_items(dynamodb, table, PARTITION))
    assert read == ["k0", "k1", "k2"]
    assert list(partition_items(dynamodb, table, "#nothing")) == []


def test_a_marker_goes_only_with_its_own_token(dynamodb: Any) -> None:
    table = new_table(dynamodb, "CatalogTable", indexes=False)
    put(dynamodb, table, "k", "new-token")  # a retried task parked a new token
    assert remove_if_token(dynamodb, table, PARTITION, "k", "old-token") is False
    assert [deserialize(i)["task_token"] for i in
            partition_items(dynamodb, table, PARTITION)] == ["new-token"]
    assert remove_if_token(dynamodb, table, PARTITION, "k", "new-token") is True
    assert list(partition_items(dynamodb, table, PARTITION)) == []
    # Already gone: nothing to keep, so it counts as removed.
    assert remove_if_token(dynamodb, table, PARTITION, "k", "new-token") is True


def test_other_failures_are_errors(dynamodb: Any) -> None:
    with pytest.raises(AwsCallFailed) as caught:
        remove_if_token(dynamodb, "no-such-table", PARTITION, "k", "t")
    assert caught.value.operation == "DeleteItem"
