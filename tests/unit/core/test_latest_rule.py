"""The one rule for what `latest` names: published version first, then creation order."""

from __future__ import annotations

from amiforge.core.latest import choose_latest, latest_reason

V1, V2 = "1" * 64, "2" * 64


def build(build_id: str, recipe_hash: str, created_at: str, status: str = "AVAILABLE") -> dict:
    return {"build_id": build_id, "recipe_hash": recipe_hash, "created_at": created_at,
            "status": status}


def test_a_superseded_build_that_finished_late_never_beats_the_published_version() -> None:
    old_late = build("web-old", V1, "2026-01-01T10:05:00Z")
    new = build("web-new", V2, "2026-01-01T10:01:00Z")
    assert choose_latest([old_late, new], V2) == new
    assert latest_reason(old_late, new, V2).startswith(
        "superseded: recipe version 111111111111 is no longer published")


def test_among_builds_of_the_published_version_the_one_created_last_wins() -> None:
    first = build("web-a", V1, "2026-01-01T10:00:00Z")
    second = build("web-b", V1, "2026-01-01T10:02:00Z")
    assert choose_latest([second, first], V1) == second
    assert latest_reason(first, second, V1) == "newer build web-b names latest"
    assert latest_reason(second, second, V1) == "latest"


def test_after_a_revert_the_reverted_to_versions_build_wins_again() -> None:
    v1 = build("web-a", V1, "2026-01-01T10:00:00Z")
    v2 = build("web-b", V2, "2026-01-01T11:00:00Z")
    assert choose_latest([v1, v2], V1) == v1


def test_with_no_build_of_the_published_version_the_newest_keeps_answering() -> None:
    v1 = build("web-a", V1, "2026-01-01T10:00:00Z")
    v1b = build("web-b", V1, "2026-01-01T11:00:00Z")
    assert choose_latest([v1, v1b], V2) == v1b
    assert choose_latest([v1, v1b], None) == v1b


def test_only_available_builds_count_and_ties_break_on_the_build_id() -> None:
    failed = build("web-z", V1, "2026-01-01T12:00:00Z", status="FAILED")
    pruned = build("web-y", V1, "2026-01-01T12:00:00Z", status="PRUNED")
    a = build("web-a", V1, "2026-01-01T10:00:00Z")
    b = build("web-b", V1, "2026-01-01T10:00:00Z")
    assert choose_latest([failed, pruned, a, b], V1) == b
    assert choose_latest([failed], V1) is None
    assert latest_reason(failed, None, V1) == "not AVAILABLE"
