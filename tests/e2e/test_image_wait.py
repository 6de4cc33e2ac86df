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
    waited = (when["LaunchTester"] - when["AwaitImage"]).total_seconds()
    assert waited >= PENDING_SECONDS - 0.5, f"AwaitImage lasted only {waited:.2f} s"
