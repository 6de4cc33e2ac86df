"""The catalog's AVAILABLE <-> REVOKED moves against DynamoDB in the local cloud: each is
conditional (a retried or racing write cannot move a record twice), and the sparse
``available`` index follows, so a REVOKED build is never `latest`."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from amiforge.aws import rollbacks as moves
from amiforge.aws.catalog import AVAILABLE, REVOKED, Catalog
from amiforge.aws.session import AwsContext
from amiforge.core import rollback as rules
from amiforge.core.statuses import MEANINGS


@pytest.fixture()
def catalog(local_cloud: Any) -> Catalog:
    from tests.functional.aws.test_build_records import table

    dynamodb = AwsContext(region=local_cloud.region,
                          endpoint_url=local_cloud.endpoint).client("dynamodb")
    return Catalog(dynamodb, table(dynamodb, ("recipe", "build_id"),
                                   ("available", "available_recipe", "created_at")))


def available_build(catalog: Catalog, build_id: str, created_at: str) -> None:
    assert catalog.start({"recipe": "web", "build_id": build_id, "created_at": created_at})
    assert catalog.mark_available("web", build_id, created_at=created_at,
                                  image_id=f"ami-{uuid.uuid4().hex[:17]}")


def event(kind: str) -> dict:
    return rules.event(kind, at="2026-12-02T08:00:00.000000Z", by="arn:aws:iam::1:user/ops",
                       reason="bad", builds=["web-a"])


def test_revoke_leaves_the_index_once_and_unrevoke_brings_it_back(catalog: Catalog) -> None:
    available_build(catalog, "web-a", "2026-12-01T09:00:00.000000Z")
    available_build(catalog, "web-b", "2026-12-01T10:00:00.000000Z")
    assert catalog.latest("web")["build_id"] == "web-b"

    assert moves.revoke(catalog, "web", "web-b", reason="bad", by="ops", at="t",
                          rolled_back_to="web-a", event=event(rules.EV_REVOKED))
    # A retried revoke, or a release of a build that is not REVOKED, changes nothing.
    assert not moves.revoke(catalog, "web", "web-b", reason="again", by="ops", at="t2",
                              rolled_back_to="web-a", event=event(rules.EV_REVOKED))
    assert not moves.unrevoke(catalog, "web", "web-a", event=event(rules.EV_RELEASED))
    assert not moves.revoke(catalog, "web", "web-nope", reason="x", by="ops", at="t",
                              rolled_back_to="web-a", event=event(rules.EV_REVOKED))
    record = catalog.get("web", "web-b")
    assert (record["status"], record["reason"], record["revoked_at"]) == (REVOKED, "bad", "t")
    assert "available_recipe" not in record and len(record["rollbacks"]) == 1
    assert [b["build_id"] for b in catalog.available("web")] == ["web-a"]
    assert catalog.latest("web")["build_id"] == "web-a"

    assert moves.note_rollback(catalog, "web", "web-a", event=event(rules.EV_TARGET))
    assert not moves.note_rollback(catalog, "web", "web-b", event=event(rules.EV_TARGET))

    assert moves.unrevoke(catalog, "web", "web-b", event=event(rules.EV_RELEASED))
    record = catalog.get("web", "web-b")
    assert record["status"] == AVAILABLE and record["available_recipe"] == "web"
    assert not {"reason", "revoked_at", "revoked_by", "rolled_back_to"} & set(record)
    assert [e["event"] for e in record["rollbacks"]] == ["revoked", "released"]
    assert catalog.latest("web")["build_id"] == "web-b"


def test_revoked_has_a_meaning_in_the_legend() -> None:
    assert REVOKED in MEANINGS and REVOKED == rules.REVOKED
