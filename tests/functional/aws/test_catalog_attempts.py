"""The catalog's attempt list, CANCELLED and the AwaitStop token's claim, against the local
cloud's DynamoDB: the conditions are the point (a retried Verify lists a launch once; a
build that finished keeps its result when someone cancels it; one resumer per token)."""

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


# -- the AwaitStop token's claim: one resumer per token ----------------------------------

def test_one_resumer_claims_a_token_and_the_answered_token_leaves_the_record(
        catalog: Catalog) -> None:
    assert catalog.start({"recipe": "web", "build_id": "b1"})
    catalog.update("web", "b1", task_token="t-1", stop_context='{"build": {}}')
    assert catalog.claim_task_token("web", "b1", "t-1", lease_seconds=90) == "claimed"
    assert catalog.claim_task_token("web", "b1", "t-1", lease_seconds=90) == "held"
    assert catalog.claim_task_token("web", "b1", "t-0", lease_seconds=90) == "gone"
    catalog.release_task_token("web", "b1", "t-0")  # not the record's token: kept
    assert catalog.get("web", "b1")["task_token"] == "t-1"
    catalog.release_task_token("web", "b1", "t-1")
    record = catalog.get("web", "b1")
    assert not {"task_token", "task_token_claimed_at", "stop_context"} & set(record)
    assert catalog.claim_task_token("web", "b1", "t-1", lease_seconds=90) == "gone"


def test_a_claim_whose_holder_died_is_taken_again_after_the_lease(catalog: Catalog) -> None:
    assert catalog.start({"recipe": "web", "build_id": "b2"})
    catalog.update("web", "b2", task_token="t-2")
    assert catalog.claim_task_token("web", "b2", "t-2", lease_seconds=90) == "claimed"
    # The holder never answered: with the lease run out (0 s here), the next one takes it.
    assert catalog.claim_task_token("web", "b2", "t-2", lease_seconds=0) == "claimed"
    # A resume that failed gives the claim back at once, and keeps the token.
    catalog.release_task_token("web", "b2", "t-2", answered=False)
    assert catalog.get("web", "b2")["task_token"] == "t-2"
    assert catalog.claim_task_token("web", "b2", "t-2", lease_seconds=90) == "claimed"


def test_a_claim_on_an_unknown_build_is_gone(catalog: Catalog) -> None:
    assert catalog.claim_task_token("web", "nope", "t", lease_seconds=90) == "gone"
