"""aws/refresh_waits.py on the local cloud: one marker per running instance refresh in the
catalog's ``#refresh-waits`` partition, found by (region, group, refresh id) with one
GetItem, listed by one Query, and removed only while it still holds the token its
remover answered."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from tests.functional.aws.dynamo_tables import new_table

from amiforge.aws.refresh_waits import RefreshWait, RefreshWaitList, marker_key


@pytest.fixture()
def table(local_cloud: Any) -> tuple[Any, str]:
    db = boto3.client("dynamodb", region_name=local_cloud.region,
                      endpoint_url=local_cloud.endpoint)
    return db, new_table(db, "CatalogTable")


def a_wait(region: str, group: str, refresh_id: str, token: str) -> RefreshWait:
    return RefreshWait(recipe="web", build_id="web-1", region=region,
                       auto_scaling_group=group, refresh_id=refresh_id, token=token,
                       since="2026-01-01T10:00:00.000000Z", deadline_seconds=21600,
                       rollout={"outcome": "running", "refreshes": [
                           {"region": region, "auto_scaling_group": group,
                            "refresh_id": refresh_id, "outcome": "running"}]})


def test_a_marker_is_found_by_region_group_and_refresh_and_round_trips(
        table: tuple[Any, str]) -> None:
    db, name = table
    waits = RefreshWaitList(db, name)
    wait = a_wait("eu-west-1", "web-asg", "r-1", "t1")
    waits.add(wait)

    assert waits.get("eu-west-1", "web-asg", "r-1") == wait
    # Another refresh of the same group, the same group elsewhere, another group: none.
    assert waits.get("eu-west-1", "web-asg", "r-2") is None
    assert waits.get("us-east-1", "web-asg", "r-1") is None
    assert waits.get("eu-west-1", "other-asg", "r-1") is None
    assert [w.key for w in waits.all()] == [marker_key("eu-west-1", "web-asg", "r-1")]


def test_a_marker_is_removed_only_with_the_token_it_holds(table: tuple[Any, str]) -> None:
    db, name = table
    waits = RefreshWaitList(db, name)
    waits.add(a_wait("us-east-1", "web-asg", "r-1", "old"))
    waits.add(a_wait("us-east-1", "web-asg", "r-1", "new"))  # a retried task parked again
    key = marker_key("us-east-1", "web-asg", "r-1")

    assert waits.remove(key, "old") is False
    assert waits.get("us-east-1", "web-asg", "r-1") is not None
    assert waits.remove(key, "new") is True
    assert waits.get("us-east-1", "web-asg", "r-1") is None
    assert list(waits.all()) == []
