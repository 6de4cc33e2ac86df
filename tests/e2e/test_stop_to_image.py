"""A build on the deployed stack, from its builder's stop to its image, counted.

The stop event's one invocation judges the builder and creates the image: the execution
goes AwaitStop -> Verified? -> ImageCreated -> AwaitImage, with no Verify or CreateImage
task; the instance-state function runs once for the build (its ``stopped`` event), and
the ``terminated`` event Finish causes is delivered to no target (filtered in the rule).
Deliveries are recorded where the local cloud routes a matched event to a target
(:func:`amiforge.localcloud.events.deliver_to_target`), synchronously with the emit.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from tests.e2e.conftest import STACK
from tests.helpers import wait_for

from amiforge.aws import stepfunctions as sfn_api
from amiforge.core.tags import BUILD_ID
from amiforge.localcloud import events as cloud_events

pytestmark = pytest.mark.e2e


@pytest.fixture
def deliveries(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str, str]]]:
    """(rule name, instance id, state) of every EC2 state-change event delivered."""
    seen: list[tuple[str, str, str]] = []
    lock = threading.Lock()
    deliver = cloud_events.deliver_to_target

    def recording(rule: Any, target: dict[str, Any], event: dict[str, Any],
                  transform_input: bool = True) -> None:
        detail = event.get("detail") or {}
        if "instance-id" in detail:
            with lock:
                seen.append((rule.name, detail["instance-id"], detail.get("state", "")))
        deliver(rule, target, event, transform_input)

    monkeypatch.setattr(cloud_events, "deliver_to_target", recording)
    yield seen


def test_the_stop_event_makes_the_image_and_terminated_invokes_nothing(
        amiforge: Any, aws: Any, recipe_dir: Any, local_cloud: Any,
        deliveries: list[tuple[str, str, str]]) -> None:
    emitted: list[tuple[str, str]] = []
    emit = local_cloud.simulator.emit

    def recorded(account: str, region: str, instance_id: str, state: str) -> None:
        emit(account, region, instance_id, state)
        emitted.append((instance_id, state))  # after the emit: its deliveries are in

    local_cloud.simulator.emit = recorded
    try:
        directory = recipe_dir("stop-to-image")
        assert amiforge("publish", str(directory)).exit_code == 0
        result = amiforge("build", "--wait", "stop-to-image", output="json")
        assert result.exit_code == 0, result.output
        (build,) = json.loads(result.stdout)["builds"]
        (builder,) = [i["InstanceId"] for r in aws.client("ec2").describe_instances(
            Filters=[{"Name": f"tag:{BUILD_ID}", "Values": [build["build_id"]]}])[
            "Reservations"] for i in r["Instances"]]
        wait_for(lambda: (builder, "terminated") in emitted, timeout=30,
                 what=f"{builder}'s terminated event")
    finally:
        local_cloud.simulator.emit = emit

    sfn = aws.client("stepfunctions")
    history = sfn_api.history(sfn, build["execution_arn"])
    entered = [e["stateEnteredEventDetails"]["name"] for e in history
               if "stateEnteredEventDetails" in e]
    resumed = next(e for e in history if e["type"] == "TaskSucceeded")
    output = json.loads(resumed["taskSucceededEventDetails"]["output"])
    assert "ImageCreated" in entered, (entered, output)
    assert "Verify" not in entered and "CreateImage" not in entered
    assert output["verdict"] == "success"
    assert output["image"]["image_id"] == build["image_id"]
    # One delivery for the build's builder: its stop. Its terminated event matched no rule.
    # (Other stacks a worker deployed in this cloud have rules of their own: only this
    # stack's count.)
    assert [s for rule, i, s in deliveries
            if i == builder and rule.startswith(f"{STACK}-")] == ["stopped"]
    assert any(i == builder and s == "terminated" for i, s in emitted)
