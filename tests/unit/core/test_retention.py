"""Retention decisions: keep, max_age, the newest available image, in use, deprecation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from amiforge.core.retention import (
    DEPRECATE,
    KEEP,
    PRUNE,
    RetentionPolicy,
    iso,
    parse_time,
    plan_recipe,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def build(n: int, days_old: float, status: str = "AVAILABLE", **extra: Any) -> dict[str, Any]:
    created = NOW - timedelta(days=days_old)
    return {"recipe": "web", "build_id": f"web-{n:02d}", "status": status,
            "image_id": f"ami-{n:04d}", "images": {"us-east-1": f"ami-{n:04d}"},
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), **extra}


def actions(decisions: list[Any]) -> dict[str, str]:
    return {d.image_id: d.action for d in decisions}


def test_keeps_the_newest_n_and_prunes_older_ones_past_max_age() -> None:
    builds = [build(1, 200), build(2, 150), build(3, 100), build(4, 10), build(5, 1)]
    decisions = plan_recipe("web", builds, RetentionPolicy(keep=2, max_age_days=90), now=NOW)
    assert actions(decisions) == {"ami-0005": KEEP, "ami-0004": KEEP, "ami-0003": PRUNE,
                                  "ami-0002": PRUNE, "ami-0001": PRUNE}
    assert [d.image_id for d in decisions] == ["ami-0005", "ami-0004", "ami-0003", "ami-0002",
                                               "ami-0001"]  # newest first
    by_id = {d.image_id: d for d in decisions}
    assert by_id["ami-0005"].reason == "newest available image"
    assert by_id["ami-0004"].reason == "one of the 2 newest images"
    assert by_id["ami-0003"].reason == ("100 days old, older than max_age_days 90, and not one "
                                        "of the 2 newest images")


def test_the_keep_newest_stay_whatever_their_age() -> None:
    builds = [build(1, 500), build(2, 400), build(3, 300)]
    decisions = plan_recipe("web", builds, RetentionPolicy(keep=3, max_age_days=1), now=NOW)
    assert set(actions(decisions).values()) == {KEEP}


def test_beyond_keep_but_younger_than_max_age_is_kept() -> None:
    builds = [build(1, 30), build(2, 20), build(3, 1)]
    decisions = plan_recipe("web", builds, RetentionPolicy(keep=1, max_age_days=90), now=NOW)
    assert actions(decisions) == {"ami-0003": KEEP, "ami-0002": KEEP, "ami-0001": KEEP}
    assert decisions[2].reason == "30 days old, within max_age_days 90"


def test_max_age_exactly_reached_is_not_yet_pruned() -> None:
    builds = [build(1, 90), build(2, 91), build(3, 0)]
    decisions = plan_recipe("web", builds, RetentionPolicy(keep=1, max_age_days=90), now=NOW)
    assert actions(decisions) == {"ami-0003": KEEP, "ami-0001": KEEP, "ami-0002": PRUNE}


def test_without_max_age_everything_beyond_keep_is_pruned() -> None:
    builds = [build(1, 3), build(2, 2), build(3, 1)]
    decisions = plan_recipe("web", builds, RetentionPolicy(keep=2, max_age_days=None), now=NOW)
    assert actions(decisions) == {"ami-0003": KEEP, "ami-0002": KEEP, "ami-0001": PRUNE}
    assert decisions[2].reason == "not one of the 2 newest images (no max_age_days)"


def test_the_newest_available_image_is_never_pruned_even_with_keep_zero() -> None:
    builds = [build(1, 400), build(2, 300)]
    decisions = plan_recipe("web", builds, RetentionPolicy(keep=0, max_age_days=1), now=NOW)
    assert actions(decisions) == {"ami-0002": KEEP, "ami-0001": PRUNE}


def test_only_available_builds_count_and_newest_is_by_creation_time() -> None:
    builds = [build(1, 400), build(2, 300), build(3, 200, status="FAILED"),
              build(4, 100, status="PRUNED"), build(5, 1, status="BUILDING"),
              build(6, 50, image_id=None)]
    decisions = plan_recipe("web", builds, RetentionPolicy(keep=1, max_age_days=30), now=NOW)
    # ami-0002 is the newest AVAILABLE one: kept although 300 days old.
    assert actions(decisions) == {"ami-0002": KEEP, "ami-0001": PRUNE}
    assert decisions[0].reason == "newest available image"


def test_an_image_in_use_is_kept_with_where_it_is_used() -> None:
    builds = [build(1, 400), build(2, 300), build(3, 1)]
    uses = {"ami-0001": ["instance i-1 (stopped)", "launch template lt-1 (web) $Default"]}
    decisions = plan_recipe("web", builds, RetentionPolicy(keep=1, max_age_days=30), now=NOW,
                            in_use=uses)
    assert actions(decisions) == {"ami-0003": KEEP, "ami-0002": PRUNE, "ami-0001": KEEP}
    assert decisions[2].reason == ("in use: instance i-1 (stopped), launch template lt-1 (web)"
                                   " $Default")


def test_in_use_accepts_a_plain_set_and_counts_any_regional_copy() -> None:
    copy = build(1, 400, images={"us-east-1": "ami-0001", "eu-west-1": "ami-eu01"})
    decisions = plan_recipe("web", [copy, build(2, 1)], RetentionPolicy(keep=1, max_age_days=1),
                            now=NOW, in_use={"ami-eu01"})
    assert actions(decisions) == {"ami-0002": KEEP, "ami-0001": KEEP}
    assert decisions[1].reason == "in use: ami-eu01"
    assert decisions[1].images == {"us-east-1": "ami-0001", "eu-west-1": "ami-eu01"}


def test_many_uses_are_summarised() -> None:
    uses = {"ami-0001": [f"instance i-{n}" for n in range(5)]}
    decisions = plan_recipe("web", [build(1, 400), build(2, 1)], RetentionPolicy(keep=1),
                            now=NOW, in_use=uses)
    assert decisions[1].reason == "in use: instance i-0, instance i-1, instance i-2 and 2 more"


def test_deprecation_is_set_on_kept_images_but_never_the_newest() -> None:
    builds = [build(1, 100), build(2, 10), build(3, 1)]
    policy = RetentionPolicy(keep=5, max_age_days=None, deprecate_after_days=30)
    decisions = plan_recipe("web", builds, policy, now=NOW)
    assert actions(decisions) == {"ami-0003": KEEP, "ami-0002": DEPRECATE,
                                  "ami-0001": DEPRECATE}
    by_id = {d.image_id: d for d in decisions}
    # 10 days old, deprecated 30 days after creation: in 20 days.
    assert by_id["ami-0002"].deprecate_at == iso(NOW + timedelta(days=20))
    assert by_id["ami-0002"].reason == (f"one of the 5 newest images; deprecate at "
                                        f"{iso(NOW + timedelta(days=20))} "
                                        "(deprecate_after_days 30)")
    # Already past its deprecation age: EC2 takes no past time, so the next minutes.
    overdue = parse_time(by_id["ami-0001"].deprecate_at or "")
    assert NOW < overdue <= NOW + timedelta(minutes=2)
    assert by_id["ami-0003"].deprecate_at is None


def test_deprecation_times_are_whole_minutes_as_ec2_keeps_them() -> None:
    odd = build(1, 10, created_at="2026-05-22T12:00:35.500000Z")
    policy = RetentionPolicy(keep=5, max_age_days=None, deprecate_after_days=30)
    decision = plan_recipe("web", [odd, build(2, 1)], policy, now=NOW)[1]
    assert decision.deprecate_at == "2026-06-21T12:00:00Z"


def test_a_recorded_deprecation_is_not_set_again() -> None:
    target = iso(NOW - timedelta(days=10) + timedelta(days=30))
    builds = [build(1, 10, deprecate_at=target), build(2, 1)]
    policy = RetentionPolicy(keep=5, max_age_days=None, deprecate_after_days=30)
    assert actions(plan_recipe("web", builds, policy, now=NOW)) == {"ami-0002": KEEP,
                                                                     "ami-0001": KEEP}
    # Moved further out (the setting grew): applied again.
    longer = RetentionPolicy(keep=5, max_age_days=None, deprecate_after_days=60)
    assert actions(plan_recipe("web", builds, longer, now=NOW))["ami-0001"] == DEPRECATE
    # Already in force and still due: nothing to change.
    past = [build(1, 100, deprecate_at=iso(NOW - timedelta(days=5))), build(2, 1)]
    assert actions(plan_recipe("web", past, policy, now=NOW))["ami-0001"] == KEEP


def test_in_use_images_are_deprecated_not_pruned() -> None:
    builds = [build(1, 100), build(2, 1)]
    policy = RetentionPolicy(keep=1, max_age_days=30, deprecate_after_days=365)
    decisions = plan_recipe("web", builds, policy, now=NOW, in_use={"ami-0001": ["ASG web"]})
    assert decisions[1].action == DEPRECATE
    assert decisions[1].reason.startswith("in use: ASG web; deprecate at ")


def test_pruned_images_are_not_deprecated() -> None:
    builds = [build(1, 100), build(2, 1)]
    policy = RetentionPolicy(keep=1, max_age_days=30, deprecate_after_days=7)
    decisions = plan_recipe("web", builds, policy, now=NOW)
    assert (decisions[1].action, decisions[1].deprecate_at) == (PRUNE, None)


def test_policy_from_a_recipe(recipe_dir: Any) -> None:
    from amiforge.core.model import Recipe

    recipe_dir.recipe(recipe_dir.valid(retention={"keep": 3, "max_age_days": None},
                                       image={"deprecate_after_days": 180}))
    (recipe,) = recipe_dir.load()
    assert isinstance(recipe, Recipe)
    assert RetentionPolicy.of(recipe) == RetentionPolicy(keep=3, max_age_days=None,
                                                         deprecate_after_days=180)


@pytest.mark.parametrize("text", ["2026-06-01T12:00:00.000000Z", "2026-06-01T12:00:00Z",
                                  "2026-06-01T12:00:00+00:00", "2026-06-01T12:00:00"])
def test_times_parse_as_utc(text: str) -> None:
    assert parse_time(text) == NOW


def test_decisions_are_json_ready() -> None:
    (decision,) = plan_recipe("web", [build(1, 1)], RetentionPolicy(), now=NOW)
    assert decision.as_dict() == {
        "recipe": "web", "build_id": "web-01", "image_id": "ami-0001", "action": KEEP,
        "reason": "newest available image", "created_at": build(1, 1)["created_at"],
        "images": {"us-east-1": "ami-0001"}, "deprecate_at": None}


def test_purging_prunes_the_newest_too_but_never_an_image_in_use() -> None:
    builds = [build(1, 400), build(2, 1), build(3, 0.5)]
    decisions = plan_recipe("web", builds, RetentionPolicy.purging(), now=NOW,
                            in_use={"ami-0001": ["instance i-1 (running)"]})
    assert actions(decisions) == {"ami-0003": PRUNE, "ami-0002": PRUNE, "ami-0001": KEEP}
    assert decisions[0].reason == "recipe retired and purged (amiforge retire --purge)"
    assert decisions[2].reason == "in use: instance i-1 (running)"
