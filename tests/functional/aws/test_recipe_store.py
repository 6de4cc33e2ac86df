"""aws/recipe_store.py on the local cloud, on the template's RecipesTable: versions kept,
current listed by the index (across pages), retiring sticks, the claim is won once."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from tests.functional.aws.dynamo_tables import new_table

from amiforge.aws.recipe_store import RecipeStore


@pytest.fixture()
def store(local_cloud: Any) -> RecipeStore:
    db = boto3.client("dynamodb", region_name=local_cloud.region,
                      endpoint_url=local_cloud.endpoint)
    return RecipeStore(db, new_table(db, "RecipesTable"))


def test_publishing_keeps_every_version_and_moves_current(store: RecipeStore) -> None:
    assert store.publish("web", "h1", {"name": "web", "n": 1}, "c1") is True
    assert store.publish("web", "h1", {"name": "web", "n": 1}, "c1") is False  # same hash
    assert store.publish("web", "h2", {"name": "web", "n": 2}, None) is True
    current = store.current("web")
    assert current is not None and (current["hash"], current["document"]) == (
        "h2", {"name": "web", "n": 2})
    old = store.version("web", "h1")
    assert old is not None and (old["document"], old["git_commit"]) == (
        {"name": "web", "n": 1}, "c1")
    assert store.current("nope") is None and store.version("web", "h9") is None
    assert [r["name"] for r in store.named(["web", "nope", "web"])] == ["web"]


def test_every_current_recipe_is_listed_across_pages(store: RecipeStore) -> None:
    padding = "x" * 40_000  # about 30 recipes per 1 MB page of the index
    for n in range(40):
        store.publish(f"r{n:02d}", "h", {"name": f"r{n:02d}", "pad": padding}, None)
    assert sorted(r["name"] for r in store.all_current()) == [f"r{n:02d}" for n in range(40)]


def test_retiring_sticks_until_published_again(store: RecipeStore) -> None:
    assert store.retire("web") is None  # not published
    store.publish("web", "h1", {"name": "web"}, None)
    first = store.retire("web")
    assert first is not None and store.retire("web") == first  # the first time is kept
    store.publish("web", "h2", {"name": "web"}, None)
    current = store.current("web")
    assert current is not None and "retired_at" not in current


def test_a_key_is_claimed_once_and_moves_only_from_the_build_it_follows(
        store: RecipeStore) -> None:
    store.publish("web", "h1", {"name": "web"}, None)
    claim = {"build_id": "web-k", "base_ami": "ami-1", "recipe_hash": "h1"}
    assert store.claim("web", "web-k", **claim) is True
    assert store.claim("web", "web-k", **claim) is False  # a concurrent detection
    retry = {**claim, "build_id": "web-k-g2"}
    assert store.claim("web", "web-k", **retry, previous="web-other") is False
    assert store.claim("web", "web-k", **retry, previous="web-k") is True
    assert store.claim("web", "web-k", **retry, previous="web-k") is False  # once
    assert store.claim("nope", "nope-k", **claim) is False  # not published
