"""The catalog adapter against the local cloud's DynamoDB, on a table made from the
template's own definition (indexes included): reads bounded by what they return, the
fallback for a table without the history index, and in-flight markers.

The items-read figures are DynamoDB's own (each response's ScannedCount), summed by the
adapter (``Catalog.items_read``): the same at 10 and 10,000 builds of one recipe.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.functional.aws.dynamo_tables import (
    builds,
    new_catalog,
    reads,
)

from amiforge.aws.catalog import AVAILABLE, FAILED, Catalog


@pytest.fixture(scope="module")
def grown(dynamodb: Any) -> dict[int, Catalog]:
    """One catalog per size, each holding that many builds of `web`."""
    out = {}
    for size in (10, 10_000):
        catalog = new_catalog(dynamodb)
        assert catalog.put_many(builds("web", size)) == size
        out[size] = catalog
    return out


def test_status_history_and_find_key_read_the_same_at_10_and_10000_builds(
        grown: dict[int, Catalog]) -> None:
    figures = {}
    for size, catalog in grown.items():
        newest = f"web-{size - 1:020x}"
        # what `amiforge status` reads per recipe: the newest build and `latest`
        (last, latest), status_reads = reads(catalog, lambda c=catalog: (
            c.history("web", limit=1), c.latest("web")))
        assert [b["build_id"] for b in last] == [newest] and last[0]["status"] == FAILED
        assert latest is not None and latest["build_id"] == f"web-{size - 2:020x}"
        five, history_reads = reads(catalog, lambda c=catalog: c.history("web", limit=5))
        assert [b["build_id"] for b in five] == [f"web-{n:020x}"
                                                 for n in range(size - 1, size - 6, -1)]
        found, key_reads = reads(catalog, lambda c=catalog, k=newest: c.find_key("web", k))
        assert [b["build_id"] for b in found] == [newest]
        figures[size] = (status_reads, history_reads, key_reads)
    assert figures[10] == figures[10_000] == (1 + 3, 5, 1)


def test_a_table_without_the_history_index_still_answers_in_time_order(
        dynamodb: Any) -> None:
    catalog = new_catalog(dynamodb, indexes=False)
    catalog.put_many({**b, "available_recipe": None} for b in builds("web", 12))
    newest = catalog.history("web", limit=2)
    assert [b["build_id"] for b in newest] == [f"web-{n:020x}" for n in (11, 10)]
    assert catalog.items_read == 12  # the whole partition: what the index saves
    assert len(catalog.history("web")) == 12


def test_find_key_lists_every_generation_of_the_key_and_nothing_else(dynamodb: Any) -> None:
    catalog = new_catalog(dynamodb)
    key, other = "web-" + "a" * 20, "web-" + "b" * 20
    for build_id, build_key in ((key, key), (f"{key}-g2", key), (f"{key}-g3", key),
                                (other, other)):
        assert catalog.announce({"recipe": "web", "build_id": build_id, "build_key": build_key})
    found, items = reads(catalog, lambda: catalog.find_key("web", key))
    assert sorted(b["build_id"] for b in found) == [key, f"{key}-g2", f"{key}-g3"]
    assert items == 3


def test_status_never_moves_back(dynamodb: Any) -> None:
    catalog = new_catalog(dynamodb)
    assert catalog.start({"recipe": "web", "build_id": "b"})
    assert catalog.mark_available("web", "b", created_at="x", image_id="ami-1")
    assert catalog.announce({"recipe": "web", "build_id": "b"}) is False
    assert catalog.start({"recipe": "web", "build_id": "b"}) is False
    assert catalog.mark_failed("web", "b", reason="late") is False
    record = catalog.get("web", "b")
    assert record is not None and record["status"] == AVAILABLE
    assert [b["build_id"] for b in catalog.available("web")] == ["b"]


def test_latest_reads_the_same_at_10_and_10000_available_builds(dynamodb: Any) -> None:
    # A history a retention-less stack would keep: every build AVAILABLE, the newest of
    # the published version; and an older published build under newer ones of another.
    def available(count: int) -> Iterator[dict[str, Any]]:
        for n in range(count):
            yield {"recipe": "web", "build_id": f"web-{n:020x}", "status": AVAILABLE,
                   "available_recipe": "web", "recipe_hash": "new" if n % 2 else "old",
                   "created_at": f"2024-01-01T00:00:00.{n:06d}Z", "image_id": f"ami-{n:017x}"}
    read = {}
    for size in (10, 10_000):
        catalog = new_catalog(dynamodb)
        catalog.put_many(available(size))
        newest, items = reads(catalog, lambda c=catalog: c.latest("web", "new"))
        assert newest is not None and newest["build_id"] == f"web-{size - 1:020x}"
        read[size] = items
        # The published version's newest build wins over a newer build of another one.
        older, _ = reads(catalog, lambda c=catalog: c.latest("web", "old"))
        assert older is not None and older["build_id"] == f"web-{size - 2:020x}"
        assert catalog.latest("web", None)["build_id"] == f"web-{size - 1:020x}"
    assert read[10] == read[10_000] <= 10

