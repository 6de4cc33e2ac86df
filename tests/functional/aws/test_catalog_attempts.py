"""The catalog's attempt list and CANCELLED, against the local cloud's DynamoDB: the
conditions are the point (a retried Verify lists a launch once; a build that finished
keeps its result when someone cancels it)."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest

from amiforge.aws.catalog import AVAILABLE, BUILDING, CANCELLED, Catalog


@pytest.fixture()
def catalog(local_cloud: Any) -> Catalog:
    db = boto3.client("dynamodb", region_name=local_cloud.region,
                      endpoint_url=local_cloud.endpoint)
    table = f"catalog-{uuid.uuid4().hex[:8]}"
    db.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                              for n in ("recipe", "build_id")],
        KeySchema=[{"AttributeName": "recipe", "KeyType": "HASH"},
                   {"AttributeName": "build_id", "KeyType": "RANGE"}])
    return Catalog(db, table)


def test_attempts_are_appended_in_order_and_each_only_once(catalog: Catalog) -> None:
    assert catalog.start({"recipe": "web", "build_id": "b1"})
    first = {"attempt": 1, "instance_id": "i-1", "outcome": "failed", "reason": "timed out"}
    assert catalog.add_attempt("web", "b1", first) is True
    assert catalog.add_attempt("web", "b1", first) is False  # a retried step
    second = {"attempt": 2, "instance_id": "i-2", "outcome": "succeeded", "reason": "ok"}
    assert catalog.add_attempt("web", "b1", second) is True
    assert catalog.get("web", "b1")["attempts"] == [first, second]


def test_an_attempt_of_an_unknown_build_is_not_recorded(catalog: Catalog) -> None:
    assert catalog.add_attempt("web", "nope", {"attempt": 1, "reason": "x"}) is False
    assert catalog.get("web", "nope") is None


def test_cancel_moves_only_a_live_build_and_drops_its_task_token(catalog: Catalog) -> None:
    assert catalog.start({"recipe": "web", "build_id": "live", "task_token": "t"})
    assert catalog.mark_cancelled("web", "live", reason="cancelled by alice") is True
    record = catalog.get("web", "live")
    assert (record["status"], record["reason"]) == (CANCELLED, "cancelled by alice")
    assert "task_token" not in record and record["finished_at"]
    assert catalog.mark_cancelled("web", "live", reason="again") is False
    assert catalog.start({"recipe": "web", "build_id": "done"})
    assert catalog.update("web", "done", only_if_status=BUILDING, status=AVAILABLE)
    assert catalog.mark_cancelled("web", "done", reason="too late") is False
    assert catalog.get("web", "done")["status"] == AVAILABLE
    assert catalog.mark_cancelled("web", "missing", reason="x") is False
