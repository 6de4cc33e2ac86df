"""aws/task_claims.py against the local cloud's DynamoDB: one resumer per AwaitStop token,
the answered token leaves the record, a dead holder's claim is taken again."""

from __future__ import annotations

from typing import Any

import pytest
from tests.functional.aws.dynamo_tables import new_table

from amiforge.aws.catalog import Catalog
from amiforge.aws.task_claims import TaskClaims


@pytest.fixture()
def catalog(dynamodb: Any) -> Catalog:
    return Catalog(dynamodb, new_table(dynamodb, "CatalogTable", indexes=False))


def test_one_resumer_claims_a_token_and_the_answered_token_leaves_the_record(
        catalog: Catalog) -> None:
    claims = TaskClaims(catalog)
    assert catalog.start({"recipe": "web", "build_id": "b1"})
    catalog.update("web", "b1", task_token="t-1", stop_context='{"build": {}}')
    assert claims.claim("web", "b1", "t-1", lease_seconds=90) == "claimed"
    assert claims.claim("web", "b1", "t-1", lease_seconds=90) == "held"
    assert claims.claim("web", "b1", "t-0", lease_seconds=90) == "gone"
    claims.release("web", "b1", "t-0")  # not the record's token: kept
    assert catalog.get("web", "b1")["task_token"] == "t-1"
    claims.release("web", "b1", "t-1")
    record = catalog.get("web", "b1")
    assert not {"task_token", "task_token_claimed_at", "stop_context"} & set(record)
    assert claims.claim("web", "b1", "t-1", lease_seconds=90) == "gone"


def test_a_claim_whose_holder_died_is_taken_again_after_the_lease(catalog: Catalog) -> None:
    claims = TaskClaims(catalog)
    assert catalog.start({"recipe": "web", "build_id": "b2"})
    catalog.update("web", "b2", task_token="t-2")
    assert claims.claim("web", "b2", "t-2", lease_seconds=90) == "claimed"
    # The holder never answered: with the lease run out (0 s here), the next one takes it.
    assert claims.claim("web", "b2", "t-2", lease_seconds=0) == "claimed"
    # A resume that failed gives the claim back at once, and keeps the token.
    claims.release("web", "b2", "t-2", answered=False)
    assert catalog.get("web", "b2")["task_token"] == "t-2"
    assert claims.claim("web", "b2", "t-2", lease_seconds=90) == "claimed"


def test_a_claim_on_an_unknown_build_is_gone(catalog: Catalog) -> None:
    claims = TaskClaims(catalog)
    assert claims.claim("web", "nope", "t", lease_seconds=90) == "gone"
