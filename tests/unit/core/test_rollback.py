"""Rollback's pure parts: where `latest` lands, which builds are revoked (all those
ranking above a --to target), the refusals, the rollback targets retention keeps, and
detection's skip of a revoked key."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from amiforge.core.latest import choose_latest
from amiforge.core.plan import REVOKED as REVOKED_REASON
from amiforge.core.plan import SKIP, LastBuild, decide
from amiforge.core.retention import KEEP, PRUNE, RetentionPolicy, plan_recipe
from amiforge.core.rollback import plan_rollback, revoked_build, rollback_targets
from amiforge.errors import InvalidInput, NotFound

V1, V2 = "1" * 64, "2" * 64
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def build(build_id: str, created_at: str, recipe_hash: str = V1,
          status: str = "AVAILABLE", **extra: str) -> dict:
    return {"recipe": "web", "build_id": build_id, "recipe_hash": recipe_hash,
            "created_at": created_at, "status": status, "image_id": f"ami-{build_id[-1]}",
            **extra}


A = build("web-a", "2026-12-01T09:00:00Z")
B = build("web-b", "2026-12-01T10:00:00Z")
C = build("web-c", "2026-12-01T11:00:00Z")


def test_without_to_latest_goes_back_to_the_previous_image_and_only_latest_is_revoked() -> None:
    plan = plan_rollback("web", [A, B, C], V1)
    assert (plan.current, plan.target, plan.revoked_ids) == (C, B, ["web-c"])
    after = [{**b, "status": "REVOKED"} if b is C else b for b in (A, B, C)]
    assert choose_latest(after, V1) == B


def test_the_previous_image_is_the_rules_answer_not_the_newest_by_date() -> None:
    # Published V2: the V2 build is latest; the V1 build finished later but ranks below.
    new = build("web-n", "2026-12-01T10:00:00Z", V2)
    late_old = build("web-o", "2026-12-01T11:00:00Z", V1)
    older = build("web-p", "2026-12-01T09:00:00Z", V2)
    plan = plan_rollback("web", [new, late_old, older], V2)
    assert (plan.current, plan.target) == (new, older)


def test_to_an_older_build_revokes_every_build_ranking_above_it() -> None:
    plan = plan_rollback("web", [A, B, C], V1, to="web-a")
    assert plan.target == A
    assert plan.revoked_ids == ["web-c", "web-b"]  # highest rank first
    after = [{**b, "status": "REVOKED"} if b["build_id"] in plan.revoked_ids else b
             for b in (A, B, C)]
    assert choose_latest(after, V1) == A


def test_to_counts_rank_not_date_builds_of_other_versions_below_it_stay() -> None:
    target = build("web-t", "2026-12-01T09:00:00Z", V2)
    later_other_version = build("web-o", "2026-12-01T12:00:00Z", V1)
    newest = build("web-n", "2026-12-01T11:00:00Z", V2)
    plan = plan_rollback("web", [target, later_other_version, newest], V2, to="web-t")
    assert plan.revoked_ids == ["web-n"]


def test_revoked_failed_and_pruned_builds_are_never_latest_nor_a_target() -> None:
    revoked = build("web-r", "2026-12-01T12:00:00Z", status="REVOKED")
    failed = build("web-f", "2026-12-01T12:30:00Z", status="FAILED")
    assert choose_latest([A, B, revoked, failed], V1) == B
    plan = plan_rollback("web", [A, B, revoked, failed], V1)
    assert (plan.current, plan.target) == (B, A)


@pytest.mark.parametrize(("builds", "to", "error", "words"), [
    ([], None, InvalidInput, "recipe 'web' has no AVAILABLE image"),
    ([C], None, InvalidInput, "no previous AVAILABLE image to roll back to: web-c (ami-c)"),
    ([A, B, build("web-r", "2026-12-01T08:00:00Z", status="REVOKED")], "web-r", InvalidInput,
     "--to 'web-r' is REVOKED, not AVAILABLE"),
    ([A, B, build("web-f", "2026-12-01T08:00:00Z", status="FAILED")], "web-f", InvalidInput,
     "--to 'web-f' is FAILED, not AVAILABLE"),
    ([A, B], "web-zzz", NotFound, "--to 'web-zzz' is not a build of recipe 'web'"),
    ([A, B], "web-b", InvalidInput, "--to 'web-b' is already `latest`"),
])
def test_refusals_name_the_value_and_say_what_to_do(builds: list, to: str | None,
                                                    error: type, words: str) -> None:
    with pytest.raises(error) as refused:
        plan_rollback("web", builds, V1, to=to)
    assert type(refused.value) is error and refused.value.exit_code == 2
    assert words in str(refused.value)
    assert refused.value.hint


def test_a_revoked_builds_refusal_says_how_to_release_it() -> None:
    revoked = build("web-r", "2026-12-01T08:00:00Z", status="REVOKED")
    with pytest.raises(InvalidInput, match="`amiforge release web-r`"):
        plan_rollback("web", [A, B, revoked], V1, to="web-r")


def test_rollback_targets_come_from_revoked_records_only() -> None:
    revoked = build("web-c", C["created_at"], status="REVOKED", rolled_back_to="web-a")
    released = build("web-x", C["created_at"], rolled_back_to="web-b")  # released: AVAILABLE
    assert rollback_targets([A, B, revoked, released]) == {"web-a": ["web-c"]}


def test_retention_keeps_the_rollback_target_whatever_keep_says() -> None:
    new = build("web-d", "2026-12-01T11:30:00Z")
    revoked = build("web-c", C["created_at"], status="REVOKED", rolled_back_to="web-a")
    policy = RetentionPolicy(keep=1, max_age_days=None)
    decisions = {d.build_id: d for d in plan_recipe("web", [A, B, revoked, new], policy,
                                                    now=NOW)}
    assert set(decisions) == {"web-a", "web-b", "web-d"}  # REVOKED: never pruned
    assert (decisions["web-a"].action, decisions["web-a"].reason) == (
        KEEP, "rollback target of REVOKED build(s) web-c")
    assert decisions["web-b"].action == PRUNE
    released = {**revoked, "status": "AVAILABLE"}
    again = {d.build_id: d.action for d in plan_recipe("web", [A, B, released, new], policy,
                                                       now=NOW)}
    assert again["web-a"] == PRUNE


def test_detection_skips_a_claimed_key_whose_build_was_revoked() -> None:
    key_build = "web-0123456789abcdef0123"
    decision = decide(name="web", recipe_hash=V1, base_ami="ami-0abc",
                      last={"last_build_key": _key(), "last_build_id": key_build,
                            "last_hash": V1, "last_base_ami": "ami-0abc"},
                      last_build=LastBuild(status="REVOKED", build_id=key_build,
                                           reason="bad nginx"))
    assert (decision.action, decision.reason) == (SKIP, REVOKED_REASON)
    assert f"`amiforge release {key_build}`" in decision.detail
    assert "bad nginx" in decision.detail and "--rebuild web" in decision.detail


def test_the_newest_revoked_build_of_a_key_is_found() -> None:
    old = build("web-r1", "2026-12-01T08:00:00Z", status="REVOKED")
    new = build("web-r2", "2026-12-01T09:00:00Z", status="REVOKED")
    assert revoked_build([A, old, new]) == new
    assert revoked_build([A, B]) is None


def _key() -> str:
    from amiforge.core.hashing import build_key
    return build_key("web", V1, "ami-0abc")
