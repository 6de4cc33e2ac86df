"""The chaos tier: whole builds on the local cloud while it throttles, fails, loses events
and kills functions mid-step. Each test states the figures it survived (run with ``-s``).

The worker's shared local cloud is re-configured for the duration of each run and put
back afterwards (``cloud_settings`` in ``bench/chaos_harness.py``, the harness this tier shares with
``bench/chaos.py``): fault knobs, time
scale, builder duration, Lambda concurrency. The stack is this module's own, deployed
with a tight launch budget (2 burst, 1 a second) so that pacing visibly engages on a
machine far slower than EC2; the production budget (4, 1.5/s) against EC2's (5, 2/s) with
50 recipes at once is ``bench/chaos.py``'s. Sizes: AMIFORGE_CHAOS_BUILDS and
AMIFORGE_CHAOS_BURST (defaults keep the tier within about three minutes on 2 cores).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from amiforge.core.recipes import load_recipes
from amiforge.ops.publish import publish
from amiforge.steps.env import StepEnv

# The harness is a benchmark's (bench/ is not a package): import it from there.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from chaos_harness import (  # noqa: E402
    ChaosPlan,
    chaos_run,
    deploy_stack,
    wait_all,
    write_recipes,
)

pytestmark = pytest.mark.chaos

STACK = "amiforge-chaos"
PACE = (2, 1.0)  # LaunchBurst, LaunchesPerSecond of this module's stack
BUILDS = int(os.environ.get("AMIFORGE_CHAOS_BUILDS", "12"))
BURST = int(os.environ.get("AMIFORGE_CHAOS_BURST", "16"))


@pytest.fixture(scope="module")
def stack(local_cloud: Any) -> StepEnv:
    _, env = deploy_stack(local_cloud, STACK, {"LaunchBurst": str(PACE[0]),
                                               "LaunchesPerSecond": str(PACE[1])})
    return env


def show(name: str, report: dict[str, Any]) -> None:
    print(f"\n== {name}\n" + json.dumps(report, indent=1, sort_keys=True))


def assert_nothing_lost(report: dict[str, Any]) -> None:
    assert report["unexpected"] == [], report["unexpected"]
    assert report["failed_without_reason"] == []
    assert report["duplicates"]["problems"] == []
    assert report["duplicates"]["executions"] == report["builds"]
    assert report["leftovers"] == {"instances": [], "images": [], "snapshots": []}
    assert report["leftovers_after_sweep"] == {"instances": [], "images": [], "snapshots": []}
    assert report["sweeper"]["errors"] == 0
    run_instances = report["run_instances"]
    assert run_instances["would_be_throttled_by_ec2"] == 0
    assert run_instances["stack_pace"]["violations_with_one_token_slack"] == 0


def test_builds_survive_throttling_lost_events_and_crashes(local_cloud: Any, stack: StepEnv,
                                                          tmp_path: Path) -> None:
    plan = ChaosPlan(builds=BUILDS, fault_rate=0.10, event_drop_rate=0.10, crash_rate=0.05,
                     flaky=2, failing=1, seed=20260101)
    report = chaos_run(local_cloud, stack, STACK, tmp_path, plan, pace=PACE)
    show("chaos", report)
    assert_nothing_lost(report)
    assert report["outcomes"] == {"AVAILABLE": BUILDS - 1, "FAILED": 1}
    injected = report["injected"]
    assert injected["faults"]["total"] > 0 and injected["events"]["dropped"] > 0
    assert injected["crashes"]["total"] > 0
    # Every injected fault was answered by a retry (botocore's, or the state machine's
    # when a function gave up or was killed): nothing surfaced as a failed build.
    assert report["retries"]["sdk"] >= injected["faults"]["total"] * 0.9
    # A killed task function is retried by the state machine. A killed function that
    # events start (the stop, an AMI event, the checks, the cleanup queue) is answered by
    # the next check or delivery instead; which functions a crash hits varies by run.
    crashed = set(injected["crashes"]["by_function"])
    event_driven = {f"{STACK}-{name}" for name in (
        "instance-state", "image-state", "await-refresh", "cleanup")}
    assert report["retries"]["state_machine"] > 0 or crashed <= event_driven, crashed


def test_lost_stop_events_are_caught_by_the_stop_check(local_cloud: Any, stack: StepEnv,
                                                       tmp_path: Path) -> None:
    plan = ChaosPlan(builds=3, fault_rate=0.0, event_drop_rate=1.0,
                     event_drop_sources=("aws.ec2",), crash_rate=0.0, flaky=0, failing=0,
                     prefix="lost", builder_seconds=8.0)  # AwaitStop waits before it stops
    report = chaos_run(local_cloud, stack, STACK, tmp_path, plan, pace=PACE)
    show("every EC2 event lost", report)
    assert_nothing_lost(report)
    assert report["outcomes"] == {"AVAILABLE": 3}
    assert report["injected"]["events"]["dropped_by_source"].get("aws.ec2", 0) >= 3
    assert "event" not in report["resumed_by"]
    assert report["resumed_by"].get("schedule", 0) >= 1


def test_a_burst_of_recipes_is_paced_under_the_launch_budget(local_cloud: Any, stack: StepEnv,
                                                             tmp_path: Path) -> None:
    # Every Resolve and Launch of the burst runs at once, as on AWS: a launch whose slot
    # is due waits for it in the function; one due more than MAX_WAIT_SECONDS away
    # raises LaunchThrottled and the state machine backs off.
    plan = ChaosPlan(builds=BURST, fault_rate=0.0, event_drop_rate=0.0, crash_rate=0.0,
                     flaky=0, failing=0, prefix="burst", builder_seconds=0.5,
                     concurrency_by_function={f"{STACK}-resolve": BURST,
                                              f"{STACK}-launch": BURST})
    report = chaos_run(local_cloud, stack, STACK, tmp_path, plan, pace=PACE)
    show(f"{BURST} recipes published at once", report)
    assert_nothing_lost(report)
    assert report["outcomes"] == {"AVAILABLE": BURST}
    run_instances = report["run_instances"]
    assert run_instances["executed"] == BURST
    assert run_instances["peak_in_any_second"] <= PACE[0] + PACE[1]
    # The budget held launches back: BURST launches at 1/s after a burst of 2 need
    # (BURST - 2) seconds, whatever the machine's speed (less a margin for the time each
    # Lambda takes between its slot and its call; unpaced, they would span about 1 s).
    assert run_instances["span_seconds"] >= (BURST - PACE[0]) / PACE[1] * 0.8
    # Whether the pacer had to hold a launch back depends on this machine's speed (on a
    # loaded 2-core runner the Lambdas themselves launch slower than the budget); that it
    # does hold them back is tests/unit/aws/test_pacing.py's. Here: the rate stayed under
    # the budget either way, and every LaunchThrottled was retried, not failed.
    pacing = run_instances["pacing"]
    assert pacing["launch_throttled"] == report["retries"]["task_failures_by_error"].get(
        "LaunchThrottled", 0)


def test_a_detection_killed_mid_way_loses_no_build(local_cloud: Any, stack: StepEnv,
                                                   tmp_path: Path) -> None:
    """The scheduled detection dies right after its first state-changing call. Whatever
    that call was, the next detection must build the recipe, once."""
    plan = ChaosPlan(builds=1, flaky=0, failing=0, prefix="killed-detect")
    write_recipes(tmp_path, plan)
    recipes = load_recipes(tmp_path)
    publish(stack, recipes, None)
    lam = boto3.client("lambda")
    detect_fn = f"{STACK}-detect"
    event = json.dumps({"recipes": [r.name for r in recipes], "trigger": "schedule"})
    before = local_cloud.faults.configure(crash_rate=1.0, crash_functions=[detect_fn])
    try:
        killed = lam.invoke(FunctionName=detect_fn, Payload=event)
    finally:
        local_cloud.faults.configure(crash_rate=before["crash_rate"],
                                     crash_functions=before["crash_functions"])
    assert json.loads(killed["Payload"].read())["errorType"] == "Runtime.ExitError"
    again = json.loads(lam.invoke(FunctionName=detect_fn, Payload=event)["Payload"].read())
    (decision,) = again["decisions"]
    assert decision["action"] == "build", decision  # not "up to date" with nothing built
    builds = [{"recipe": decision["recipe"], "build_id": decision["build_key"]}]
    executions = wait_all(stack, builds, timeout=300)
    assert executions[decision["build_key"]]["status"] == "SUCCEEDED"
    assert len(stack.catalog.history(decision["recipe"])) == 1
