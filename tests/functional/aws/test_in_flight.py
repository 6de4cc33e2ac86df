"""aws/in_flight.py against the local cloud: the sweeper and ``status`` read the builds in
flight through their markers, at a cost that follows the builds in flight, never the
history; ended builds' markers are forgotten; records from before markers existed are
marked once by deploy."""

from __future__ import annotations

from typing import Any

from tests.functional.aws.dynamo_tables import builds, new_catalog, reads

from amiforge.aws.catalog import AVAILABLE, BUILDING, STARTING
from amiforge.aws.in_flight import InFlight


def test_in_flight_lists_live_builds_and_forgets_ended_ones(dynamodb: Any) -> None:
    catalog = new_catalog(dynamodb)
    catalog.put_many(builds("web", 50))  # history the sweeper must not read
    assert catalog.announce({"recipe": "web", "build_id": "web-s"})  # STARTING
    assert catalog.start({"recipe": "web", "build_id": "web-b"})  # BUILDING
    assert catalog.start({"recipe": "web", "build_id": "web-done"})
    assert catalog.mark_failed("web", "web-done", reason="boom")
    assert catalog.start({"recipe": "api", "build_id": "api-b"})
    live, items = reads(catalog, lambda: InFlight(catalog).live("web"))
    assert sorted((b["build_id"], b["status"]) for b in live) == [
        ("web-b", BUILDING), ("web-s", STARTING)]
    assert items == 3 + 3  # three markers, their three records
    live, items = reads(catalog, lambda: InFlight(catalog).live("web"))
    assert len(live) == 2 and items == 2 + 2  # the ended build's marker is gone
    # Register undoing its AVAILABLE write puts the build back in flight.
    assert catalog.update("web", "web-b", only_if_status=BUILDING, status=AVAILABLE)
    assert [b["build_id"] for b in InFlight(catalog).live("web")] == ["web-s"]
    assert catalog.unmark_available("web", "web-b")
    assert sorted(b["build_id"] for b in InFlight(catalog).live("web")) == ["web-b", "web-s"]
    assert all(not b["recipe"].startswith("#") for b in catalog.all_builds())


def test_backfill_marks_records_written_before_markers_once(dynamodb: Any) -> None:
    catalog = new_catalog(dynamodb)
    # As an older version wrote them: records only, no markers.
    dynamodb.put_item(TableName=catalog.table, Item={
        "recipe": {"S": "web"}, "build_id": {"S": "web-old"}, "status": {"S": BUILDING},
        "created_at": {"S": "2024-01-01T00:00:00.000000Z"}})
    assert InFlight(catalog).live("web") == []
    assert InFlight(catalog).backfill() == 1
    assert [b["build_id"] for b in InFlight(catalog).live("web")] == ["web-old"]
    assert InFlight(catalog).backfill() == 0
