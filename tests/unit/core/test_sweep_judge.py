"""The sweeper's judgement of one build: leave it, clean it, or fail and clean it."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from cfnlint.decode.cfn_yaml import loads

from amiforge.core.model import BaseSpec, BuildSpec, ImageSpec, Recipe, RetentionSpec
from amiforge.core.sweep_judge import (
    CLEAN,
    CONSOLE_RETRY,
    CONSOLE_WAIT_SECONDS,
    FAIL,
    LAUNCH_THROTTLE_RETRY,
    LAUNCH_THROTTLE_SECONDS,
    LEAVE,
    budget_minutes,
    judge,
    recipe_budget_minutes,
)
from amiforge.deploy.stack import template_text

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BUDGET = timedelta(hours=5)


def record(status: str, started_hours_ago: float = 1) -> dict:
    created = NOW - timedelta(hours=started_hours_ago)
    return {"recipe": "web", "build_id": "web-1", "status": status,
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}


def test_a_build_not_in_this_catalog_is_left_alone() -> None:
    verdict = judge(None, None, now=NOW, budget=BUDGET)
    assert verdict.action == LEAVE
    assert "not in this stack's catalog" in verdict.reason


@pytest.mark.parametrize("status", ["AVAILABLE", "FAILED", "CANCELLED", "PRUNED"])
def test_a_finished_build_is_cleaned(status: str) -> None:
    verdict = judge(record(status), "SUCCEEDED", now=NOW, budget=BUDGET)
    assert (verdict.action, verdict.reason, verdict.stop) == (CLEAN, f"build is {status}", False)


def test_a_running_build_within_its_budget_is_left_alone() -> None:
    assert judge(record("BUILDING", 4.9), "RUNNING", now=NOW, budget=BUDGET).action == LEAVE


@pytest.mark.parametrize("execution", ["ABORTED", "FAILED", "TIMED_OUT", "SUCCEEDED"])
def test_building_with_an_ended_execution_is_failed(execution: str) -> None:
    verdict = judge(record("BUILDING"), execution, now=NOW, budget=BUDGET)
    assert verdict.action == FAIL
    assert verdict.stop is False
    assert f"execution is {execution}" in verdict.reason


def test_building_whose_execution_is_gone_is_failed() -> None:
    verdict = judge(record("BUILDING"), None, now=NOW, budget=BUDGET)
    assert verdict.action == FAIL
    assert "no longer exists" in verdict.reason


def test_building_past_its_budget_is_stopped_and_failed() -> None:
    verdict = judge(record("BUILDING", 5.1), "RUNNING", now=NOW, budget=BUDGET)
    assert (verdict.action, verdict.stop) == (FAIL, True)
    assert "longer than its budget (5.0 h" in verdict.reason


def test_a_starting_build_is_judged_like_a_building_one() -> None:
    # Started, Resolve never ran (the execution was stopped first): failed, not kept forever.
    verdict = judge(record("STARTING"), "ABORTED", now=NOW, budget=BUDGET)
    assert verdict.action == FAIL
    assert "execution is ABORTED but the record was still STARTING" in verdict.reason
    assert judge(record("STARTING"), "RUNNING", now=NOW, budget=BUDGET).action == LEAVE


def test_an_unknown_status_is_left_alone() -> None:
    assert judge(record("WEIRD"), None, now=NOW, budget=BUDGET).action == LEAVE


def recipe(*, regions: tuple[str, ...] = (), cloudformation: str | None = None,
           timeout_minutes: int = 45, retries: int = 1) -> Recipe:
    return Recipe(name="web", description=None, base=BaseSpec(ssm_parameter="/p"),
                  build=BuildSpec(cloudformation=cloudformation,
                                  timeout_minutes=timeout_minutes, retries=retries),
                  image=ImageSpec(regions=regions), retention=RetentionSpec(), script="",
                  files={"stack.yaml": b"{}"}, source="web.yaml")


def test_the_launch_throttle_ceiling_follows_the_state_machines_retry() -> None:
    # IntervalSeconds 2, BackoffRate 1.5, MaxDelaySeconds 30, MaxAttempts 99: seven
    # growing delays (2 .. 22.8 s) before the 30 s cap, then 92 capped ones.
    growing = sum(2 * 1.5 ** n for n in range(7))
    assert abs(LAUNCH_THROTTLE_SECONDS - (growing + 92 * 30)) < 1e-6
    assert 47 * 60 < LAUNCH_THROTTLE_SECONDS < 48 * 60
    sub = loads(template_text())["Resources"]["BuildStateMachine"]["Properties"][
        "DefinitionString"]["Fn::Sub"]
    machine = json.loads(re.sub(r"\$\{([A-Za-z:.]+)\}", "arn", sub if isinstance(sub, str)
                                else sub[0]))
    for task in ("Launch", "CreateBuildStack"):
        (retry,) = [r for r in machine["States"][task]["Retry"]
                    if r["ErrorEquals"] == ["LaunchThrottled"]]
        assert (retry["IntervalSeconds"], retry["BackoffRate"], retry["MaxDelaySeconds"],
                retry["MaxAttempts"]) == LAUNCH_THROTTLE_RETRY, task


def test_the_console_wait_follows_verifys_retry() -> None:
    # Every failed attempt counts against retries, a missing marker too: each launch may
    # spend Verify's whole ConsoleNotReady retry (3 + 6 + 12 + 24 s) before it fails.
    assert CONSOLE_WAIT_SECONDS == 45
    sub = loads(template_text())["Resources"]["BuildStateMachine"]["Properties"][
        "DefinitionString"]["Fn::Sub"]
    machine = json.loads(re.sub(r"\$\{([A-Za-z:.]+)\}", "arn", sub if isinstance(sub, str)
                                else sub[0]))
    (retry,) = [r for r in machine["States"]["Verify"]["Retry"]
                if r["ErrorEquals"] == ["ConsoleNotReady"]]
    assert (retry["IntervalSeconds"], retry["BackoffRate"], retry.get("MaxDelaySeconds",
            float("inf")), retry["MaxAttempts"]) == CONSOLE_RETRY


def test_budget_covers_every_wait_of_a_plain_build() -> None:
    # Per launch: the LaunchThrottled backoff (48 min), AwaitStop's timeout and Verify's
    # wait for a late marker (45 s: 1 min); then the image wait and the margin. No copies,
    # no build stack.
    assert budget_minutes(timeout_minutes=45, retries=2, image_timeout_minutes=240,
                          copies=False, build_stack=False,
                          margin_minutes=30) == 3 * (45 + 48 + 1) + 240 + 30


def test_budget_adds_the_copy_wait_when_the_image_is_copied() -> None:
    plain = budget_minutes(timeout_minutes=45, retries=0, image_timeout_minutes=240,
                           copies=False, build_stack=False)
    assert budget_minutes(timeout_minutes=45, retries=0, image_timeout_minutes=240,
                          copies=True, build_stack=False) == plain + 240


def test_budget_adds_the_build_stack_wait_for_a_cloudformation_builder() -> None:
    plain = budget_minutes(timeout_minutes=45, retries=0, image_timeout_minutes=240,
                           copies=False, build_stack=False)
    assert budget_minutes(timeout_minutes=45, retries=0, image_timeout_minutes=240,
                          copies=False, build_stack=True) == plain + 45


def test_budget_without_the_recipe_assumes_the_longest_build() -> None:
    assert budget_minutes(timeout_minutes=45, retries=1, image_timeout_minutes=240) == (
        2 * (45 + 48 + 1) + 45 + 240 + 240 + 30)


def test_the_throttle_ceiling_is_real_time_counted_in_the_stacks_minutes() -> None:
    # On a stack whose minute is 1 s, 2824 s of backoff are 2825 of its minutes, and
    # Verify's 45 s of console retries are 45.
    assert budget_minutes(timeout_minutes=45, retries=0, image_timeout_minutes=240,
                          copies=False, build_stack=False, seconds_per_minute=1,
                          margin_minutes=0) == 45 + 2825 + 45 + 240


@pytest.mark.parametrize(("spec", "extra"), [
    ({}, 0),
    ({"regions": ("eu-west-1",)}, 240),
    ({"cloudformation": "stack.yaml"}, 45),
    ({"regions": ("eu-west-1",), "cloudformation": "stack.yaml"}, 240 + 45),
])
def test_a_recipes_budget_counts_only_the_waits_it_makes(spec: dict, extra: int) -> None:
    assert recipe_budget_minutes(recipe(**spec), image_timeout_minutes=240) == (
        2 * (45 + 48 + 1) + 240 + 30 + extra)


@pytest.mark.parametrize("spec", [{}, {"regions": ("eu-west-1",)},
                                  {"cloudformation": "stack.yaml"},
                                  {"regions": ("eu-west-1",), "cloudformation": "stack.yaml"}])
def test_a_slow_live_build_is_never_swept(spec: dict) -> None:
    # Every wait at its longest, one minute short of the whole: the sweeper leaves it.
    r = recipe(timeout_minutes=45, retries=1, **spec)
    longest = (2 * 45 + 2 * 48 + 2 * 1 + 240 + (240 if r.image.regions else 0)
               + (45 if r.builder == "cloudformation" else 0))
    budget = timedelta(minutes=recipe_budget_minutes(r, image_timeout_minutes=240))
    for minutes in (longest, budget.total_seconds() / 60 - 1):
        verdict = judge(record("BUILDING", minutes / 60), "RUNNING", now=NOW, budget=budget)
        assert verdict.action == LEAVE, (spec, minutes)
