"""Issue 23: a build waits for its image by EC2's AMI state-change event, so its state
transitions do not grow with the snapshot's time. Two builds through the real CLI on the
deployed stack: one whose image is available at once, one whose image stays pending for a
few seconds (the local cloud's ``image_pending_seconds``); both bill the same transitions,
and the second one's AwaitImage really waited."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from amiforge.aws import stepfunctions as sfn_api
from amiforge.ops.builds import execution_arn_for
from amiforge.steps.env import StepEnv

pytestmark = pytest.mark.e2e
PENDING_SECONDS = 4.0


def build(amiforge: Any, recipe_dir: Any, name: str) -> str:
    assert amiforge("publish", "--no-detect", str(recipe_dir(name))).exit_code == 0
    result = amiforge("build", "--wait", name, output="json")
    assert result.exit_code == 0, result.output
    (built,) = json.loads(result.stdout)["builds"]
    assert built["status"] == "AVAILABLE", built
    return str(built["build_id"])


def entered(stack: StepEnv, build_id: str) -> tuple[Counter[str], dict[str, datetime]]:
    """How often each state was entered (what Standard workflows bill), and when."""
    events = sfn_api.history(stack.client("stepfunctions"), execution_arn_for(stack, build_id))
    states: Counter[str] = Counter()
    when: dict[str, datetime] = {}
    for event in events:
        if event["type"].endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            states[name] += 1
            when.setdefault(name, event["timestamp"])
    return states, when


def test_transitions_do_not_grow_while_the_image_is_pending(
        amiforge: Any, recipe_dir: Any, stack: StepEnv, local_cloud: Any) -> None:
    quick = build(amiforge, recipe_dir, "snap-quick")
    before = local_cloud.image_pending_seconds
    local_cloud.image_pending_seconds = PENDING_SECONDS
    try:
        slow = build(amiforge, recipe_dir, "snap-slow")
    finally:
        local_cloud.image_pending_seconds = before

    quick_states, _ = entered(stack, quick)
    slow_states, when = entered(stack, slow)
    assert slow_states == quick_states
    assert slow_states["AwaitImage"] == 1 and "WaitForImage" not in slow_states
    # No test: and no other region: neither LaunchTester nor Distribute is invoked.
    assert "LaunchTester" not in slow_states and "Distribute" not in slow_states
    assert slow_states["Test?"] == 1 and slow_states["Copies?"] == 1
    # Resolve launched the builder and Register cleaned up: no Launch, no Finish.
    assert "Launch" not in slow_states and "Finish" not in slow_states
    assert slow_states["Builder?"] == 1 and slow_states["Finished?"] == 1
    waited = (when["Test?"] - when["AwaitImage"]).total_seconds()
    assert waited >= PENDING_SECONDS - 0.5, f"AwaitImage lasted only {waited:.2f} s"


def test_lost_ami_events_and_copies_are_caught_by_the_image_check(
        amiforge: Any, recipe_dir: Any, stack: StepEnv, local_cloud: Any) -> None:
    """Every EC2 event lost, the image and its copy pending: the deployed image check
    (its schedule sped up, as the stop check's) resumes AwaitImage and AwaitCopies."""
    # Its stop is found by the check too (every EC2 event is lost): an attempt timeout
    # of 120 s, not 30, so a slow tick on a loaded machine is not a failed build.
    directory = recipe_dir("snap-lost", timeout_minutes=120)
    recipe = directory / "snap-lost.yaml"
    recipe.write_text(recipe.read_text().replace(
        "image:\n  tags: {team: e2e}\n", "image:\n  tags: {team: e2e}\n  regions: [eu-west-1]\n"))
    assert amiforge("publish", "--no-detect", str(directory)).exit_code == 0
    before = (local_cloud.image_pending_seconds, local_cloud.time_scale,
              local_cloud.faults.knobs())
    # Long enough that the copy is still pending when Distribute looks, even when that
    # invocation runs slowly on a loaded machine (at 2 s it sometimes was not).
    local_cloud.image_pending_seconds = 5.0
    local_cloud.time_scale = 60.0  # rate(1 minute) checks tick every second
    local_cloud.faults.configure(event_drop_rate=1.0, event_drop_sources=["aws.ec2"])
    dropped_before = local_cloud.faults.stats()["events"]["dropped_by_source"].get("aws.ec2", 0)
    try:
        result = amiforge("build", "--wait", "snap-lost", output="json")
        dropped = local_cloud.faults.stats()["events"]["dropped_by_source"].get(
            "aws.ec2", 0) - dropped_before
    finally:
        local_cloud.image_pending_seconds, local_cloud.time_scale = before[0], before[1]
        local_cloud.faults.configure(**before[2])
    assert result.exit_code == 0, result.output
    (built,) = json.loads(result.stdout)["builds"]
    assert built["status"] == "AVAILABLE", built
    states, _ = entered(stack, built["build_id"])
    assert (states["AwaitImage"], states["AwaitCopies"]) == (1, 1)
    assert dropped >= 2  # at least the image's "available" and the builder's "stopped"
