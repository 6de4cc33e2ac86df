"""Plan decisions: each reason, the retry policy for failed builds, build generations,
and the document diff that explains changes."""

from datetime import UTC, datetime, timedelta

from amiforge.core.hashing import build_key
from amiforge.core.plan import (
    BASE_CHANGED,
    BUILD,
    BUILDING_NOW,
    FAILED,
    NEVER_BUILT,
    NO_BASE,
    RECIPE_CHANGED,
    RETRY_FAILED,
    SKIP,
    UP_TO_DATE,
    LastBuild,
    PlanDecision,
    RetryPolicy,
    decide,
    document_changes,
    generation_id,
    generation_of,
    schedule_period,
)

HASH_A, HASH_B = "a" * 64, "b" * 64


def claim(recipe_hash: str, base: str) -> dict:
    return {"last_build_key": build_key("web", recipe_hash, base), "last_hash": recipe_hash,
            "last_base_ami": base, "last_build_id": "web-123"}


def test_never_built() -> None:
    d = decide(name="web", recipe_hash=HASH_A, base_ami="ami-1", last=None)
    assert (d.action, d.reason) == (BUILD, NEVER_BUILT)
    assert d.build_key == build_key("web", HASH_A, "ami-1")


def test_up_to_date_when_the_key_matches() -> None:
    d = decide(name="web", recipe_hash=HASH_A, base_ami="ami-1", last=claim(HASH_A, "ami-1"))
    assert (d.action, d.reason, d.detail) == (SKIP, UP_TO_DATE, "built as web-123")


def test_base_changed_names_both_images() -> None:
    d = decide(name="web", recipe_hash=HASH_A, base_ami="ami-2", last=claim(HASH_A, "ami-1"))
    assert (d.action, d.reason, d.detail) == (BUILD, BASE_CHANGED, "from ami-1 to ami-2")
    assert d.previous_base_ami == "ami-1"


def test_recipe_changed_names_the_files() -> None:
    d = decide(name="web", recipe_hash=HASH_B, base_ami="ami-1", last=claim(HASH_A, "ami-1"),
               changes=("scripts/web.sh",))
    assert (d.action, d.reason, d.detail) == (BUILD, RECIPE_CHANGED, "changed: scripts/web.sh")


def test_recipe_and_base_changed_says_both() -> None:
    d = decide(name="web", recipe_hash=HASH_B, base_ami="ami-2", last=claim(HASH_A, "ami-1"))
    assert d.reason == RECIPE_CHANGED
    assert d.detail == "recipe content changed; base also changed from ami-1 to ami-2"


def test_unresolvable_base_is_skipped_with_the_problem() -> None:
    d = decide(name="web", recipe_hash=HASH_A, base_ami=None, last=None,
               base_problem="SSM parameter /x does not exist")
    assert (d.action, d.reason, d.detail) == (SKIP, NO_BASE, "SSM parameter /x does not exist")


def test_document_changes_lists_files_and_fields() -> None:
    old = {"name": "web", "build": {"retries": 1, "script": "a"}, "files": {"s.sh": "YQ=="},
           "hash": "x", "source": "a.yaml"}
    new = {"name": "web", "build": {"retries": 2, "script": "b"}, "files": {"s.sh": "Yg=="},
           "hash": "y", "source": "b.yaml"}
    assert document_changes(old, new) == ("build.retries", "s.sh")
    assert document_changes(None, new) == ()


# -- failed builds: visible, retried after 1, 2, 4 ... periods, up to retry_failed -------
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def failed(failures: int, ago: timedelta) -> LastBuild:
    return LastBuild(status="FAILED", build_id="web-123", reason="Verify: exit=3",
                     finished_at=NOW - ago, failures=failures)


def decide_failed(failures: int, ago: timedelta, limit: int = 2) -> PlanDecision:
    return decide(name="web", recipe_hash=HASH_A, base_ami="ami-1", last=claim(HASH_A, "ami-1"),
                  last_build=failed(failures, ago), policy=RetryPolicy(limit, HOUR, NOW))


def test_a_failed_build_is_not_up_to_date_and_says_why() -> None:
    d = decide_failed(1, timedelta(minutes=5))
    assert (d.action, d.reason) == (SKIP, FAILED)
    assert d.detail.startswith("failed: Verify: exit=3 (build web-123); retry 1 of 2 from ")


def test_retries_wait_one_two_four_periods() -> None:
    # Due half a period early (schedule ticks drift), not earlier.
    assert decide_failed(1, timedelta(minutes=29)).action == SKIP
    assert (decide_failed(1, timedelta(minutes=31)).action,
            decide_failed(1, timedelta(minutes=31)).reason) == (BUILD, RETRY_FAILED)
    assert decide_failed(2, timedelta(minutes=89)).action == SKIP
    assert decide_failed(2, timedelta(minutes=91)).action == BUILD
    assert decide_failed(3, timedelta(minutes=209), limit=3).action == SKIP
    assert decide_failed(3, timedelta(minutes=211), limit=3).action == BUILD


def test_retries_stop_at_the_limit_and_plan_says_what_to_do() -> None:
    d = decide_failed(3, timedelta(days=30))
    assert (d.action, d.reason) == (SKIP, FAILED)
    assert d.detail.startswith("failed 3 times: fix the recipe, or `amiforge build`")
    assert decide_failed(1, timedelta(days=30), limit=0).detail.startswith("failed once:")


def test_a_build_in_flight_or_done_is_not_retried() -> None:
    for status, reason in (("STARTING", BUILDING_NOW), ("BUILDING", BUILDING_NOW),
                           ("AVAILABLE", UP_TO_DATE)):
        d = decide(name="web", recipe_hash=HASH_A, base_ami="ami-1",
                   last=claim(HASH_A, "ami-1"), last_build=LastBuild(status, "web-123"),
                   policy=RetryPolicy(2, HOUR, NOW))
        assert (d.action, d.reason) == (SKIP, reason)


def test_a_changed_key_builds_whatever_the_last_failure() -> None:
    d = decide(name="web", recipe_hash=HASH_B, base_ami="ami-1", last=claim(HASH_A, "ami-1"),
               last_build=failed(9, timedelta(0)), policy=RetryPolicy(2, HOUR, NOW))
    assert (d.action, d.reason) == (BUILD, RECIPE_CHANGED)


def test_generations_name_each_build_of_one_key() -> None:
    key = build_key("web", HASH_A, "ami-1")
    assert generation_id(key, 1) == key
    assert generation_id(key, 2) == f"{key}-g2"
    assert [generation_of(key, generation_id(key, n)) for n in (1, 2, 13)] == [1, 2, 13]
    assert generation_of(key, f"{key}-20261201T120000") == 1  # an older timestamped rebuild


def test_schedule_period_reads_rate_expressions() -> None:
    assert schedule_period("rate(6 hours)") == timedelta(hours=6)
    assert schedule_period("rate(1 minute)") == timedelta(minutes=1)
    assert schedule_period("rate(30 days)") == timedelta(days=30)
    assert schedule_period("cron(0 3 * * ? *)") == HOUR
    assert schedule_period(None) == HOUR


def test_a_cancelled_build_is_left_alone_and_plan_says_how_to_build_it() -> None:
    d = decide(name="web", recipe_hash=HASH_A, base_ami="ami-1", last=claim(HASH_A, "ami-1"),
               last_build=LastBuild("CANCELLED", "web-123", reason="stack destroyed"),
               policy=RetryPolicy(2, HOUR, NOW))
    assert (d.action, d.reason) == (SKIP, "cancelled")
    assert d.detail == ("build web-123 was cancelled: stack destroyed; "
                        "`amiforge build web` builds it again")
    # A new version or base still builds.
    changed = decide(name="web", recipe_hash=HASH_B, base_ami="ami-1",
                     last=claim(HASH_A, "ami-1"),
                     last_build=LastBuild("CANCELLED", "web-123"), policy=None)
    assert changed.action == BUILD
