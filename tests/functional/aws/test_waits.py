"""aws/waits.py on the local cloud: one marker per build attempt in the catalog's
``#waiting`` partition, listed by one Query (paged), removed per attempt."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from tests.functional.aws.dynamo_tables import new_table

from amiforge.aws.catalog import Catalog
from amiforge.aws.waits import WAITING_PARTITION, WaitingList


@pytest.fixture()
def table(local_cloud: Any) -> tuple[Any, str]:
    db = boto3.client("dynamodb", region_name=local_cloud.region,
                      endpoint_url=local_cloud.endpoint)
    return db, new_table(db, "CatalogTable")


def test_markers_are_per_attempt_and_not_builds(table: tuple[Any, str]) -> None:
    db, name = table
    waiting = WaitingList(db, name)
    waiting.add(recipe="web", build_id="web-1", instance_id="i-1", token="t1")
    waiting.add(recipe="web", build_id="web-1", instance_id="i-2", token="t2")  # relaunch
    waiting.add(recipe="api", build_id="api-1", instance_id="i-3", token="t3")
    assert sorted((w.build_id, w.instance_id, w.token) for w in waiting.all()) == [
        ("api-1", "i-3", "t3"), ("web-1", "i-1", "t1"), ("web-1", "i-2", "t2")]
    waiting.remove("web-1", "i-1")  # the old attempt's resumer: the new one stays
    assert [w.key for w in waiting.all() if w.recipe == "web"] == ["web-1#i-2"]
    waiting.remove("web-1", "i-1")  # again: nothing to remove, no error
    assert list(Catalog(db, name).all_builds()) == []  # bookkeeping, not builds
    assert WAITING_PARTITION.startswith("#")


def test_the_partition_is_read_page_by_page(table: tuple[Any, str]) -> None:
    db, name = table
    token = "t" * 9000  # big items, so that the Query needs more than one 1 MB page
    items = [{"recipe": WAITING_PARTITION, "build_id": f"web-{n:03d}#i-1",
              "build_recipe": "web", "build": f"web-{n:03d}", "instance_id": "i-1",
              "task_token": token, "since": "2024-01-01T00:00:00Z"} for n in range(130)]
    for start in range(0, len(items), 25):
        db.batch_write_item(RequestItems={name: [
            {"PutRequest": {"Item": {k: {"S": v} for k, v in item.items()}}}
            for item in items[start:start + 25]]})
    first = db.query(TableName=name, KeyConditionExpression="recipe = :w",
                     ExpressionAttributeValues={":w": {"S": WAITING_PARTITION}})
    assert "LastEvaluatedKey" in first  # more than one page indeed
    assert len({w.build_id for w in WaitingList(db, name).all()}) == 130
