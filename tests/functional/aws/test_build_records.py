"""The catalog's STARTING -> BUILDING -> FAILED moves and the recipe store's claims of
build generations and retirement, against DynamoDB in the local cloud (in-process)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from amiforge.aws.catalog import Catalog
from amiforge.aws.recipe_store import RecipeStore
from amiforge.aws.session import AwsContext


def table(dynamodb: Any, keys: tuple[str, str], index: tuple[str, str, str]) -> str:
    """A table shaped as the template's (partition, sort key, one GSI)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    attributes = {keys[0], keys[1], index[1], index[2]}
    dynamodb.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in attributes],
        KeySchema=[{"AttributeName": keys[0], "KeyType": "HASH"},
                   {"AttributeName": keys[1], "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{"IndexName": index[0], "Projection": {"ProjectionType": "ALL"},
                                 "KeySchema": [{"AttributeName": index[1], "KeyType": "HASH"},
                                               {"AttributeName": index[2], "KeyType": "RANGE"}]}])
    return name


@pytest.fixture()
def dynamodb(local_cloud: Any) -> Any:
    return AwsContext(region=local_cloud.region, endpoint_url=local_cloud.endpoint).client(
        "dynamodb")


@pytest.fixture()
def catalog(dynamodb: Any) -> Catalog:
    return Catalog(dynamodb, table(dynamodb, ("recipe", "build_id"),
                                   ("available", "available_recipe", "created_at")))


@pytest.fixture()
def store(dynamodb: Any) -> RecipeStore:
    return RecipeStore(dynamodb, table(dynamodb, ("name", "version"),
                                       ("current", "version", "name")))


def test_a_build_is_starting_then_building_and_each_write_happens_once(
        catalog: Catalog) -> None:
    build = {"recipe": "web", "build_id": "web-1", "execution_arn": "arn:x"}
    assert catalog.announce(build) is True
    assert catalog.announce(build) is False
    assert catalog.get("web", "web-1")["status"] == "STARTING"
    assert catalog.start({**build, "base_name": "al2023"}) is True   # Resolve, over STARTING
    assert catalog.start(build) is False                              # a retried Resolve
    assert catalog.announce(build) is False                           # a late starter
    assert catalog.get("web", "web-1")["status"] == "BUILDING"
    assert catalog.get("web", "web-1")["base_name"] == "al2023"


def test_a_build_that_fails_before_resolve_is_failed_from_starting(catalog: Catalog) -> None:
    catalog.announce({"recipe": "web", "build_id": "web-2"})
    assert catalog.mark_failed("web", "web-2", reason="NotFound: base gone") is True
    assert catalog.mark_failed("web", "web-2", reason="again") is False
    assert catalog.get("web", "web-2")["reason"] == "NotFound: base gone"
    # No record at all (its starter died): record_failed writes one, once.
    assert catalog.mark_failed("web", "web-3", reason="x") is False
    assert catalog.record_failed({"recipe": "web", "build_id": "web-3", "reason": "x"}) is True
    assert catalog.record_failed({"recipe": "web", "build_id": "web-3", "reason": "y"}) is False
    found = catalog.get_many([("web", "web-2"), ("web", "web-3"), ("web", "nope")])
    assert {k: v["status"] for k, v in found.items()} == {("web", "web-2"): "FAILED",
                                                          ("web", "web-3"): "FAILED"}


def test_a_generation_is_claimed_once_from_the_build_it_follows(store: RecipeStore) -> None:
    store.publish("web", "h" * 64, {"name": "web"}, None)
    claim = {"base_ami": "ami-1", "recipe_hash": "h" * 64}
    assert store.claim("web", "web-k", build_id="web-k", **claim) is True
    assert store.claim("web", "web-k", build_id="web-k", **claim) is False
    assert store.claim("web", "web-k", build_id="web-k-g2", previous="web-k", **claim) is True
    # A racer that read the claim before: same previous, too late.
    assert store.claim("web", "web-k", build_id="web-k-g2", previous="web-k", **claim) is False
    assert store.current("web")["last_build_id"] == "web-k-g2"


def test_retiring_sticks_until_the_recipe_is_published_again(store: RecipeStore) -> None:
    assert store.retire("ghost") is None
    store.publish("web", "h" * 64, {"name": "web"}, None)
    first = store.retire("web")
    assert first and store.retire("web") == first  # retiring again keeps the first time
    assert store.current("web")["retired_at"] == first
    store.publish("web", "h" * 64, {"name": "web"}, None)
    assert "retired_at" not in store.current("web")
