"""AwaitStop's two halves on the local cloud: ``register_wait`` parks the task token (on
the record and as a ``#waiting`` marker) and resumes at once if the builder already
stopped; ``on_instance_state`` resumes the execution when EC2 reports the stop. Both may
answer one token: the second answer changes nothing. Events about anything else are
ignored. Real executions wait on the tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.helpers import TaskTokens, build_id_of, raw_builder, seed, unique, wait_state

from amiforge.aws.session import AwsContext
from amiforge.aws.waits import WaitingList
from amiforge.steps.env import StepEnv
from amiforge.steps.wait_stop import on_instance_state, register_wait

SCRIPT = "#!/bin/bash\necho done\n"
HANG = "#!/bin/bash\n# amiforge-sim: hang\n"


@pytest.fixture(scope="module")
def tokens(aws: AwsContext) -> Iterator[TaskTokens]:
    machine = TaskTokens(aws)
    yield machine
    machine.close()


def waiting(env: StepEnv, build_id: str) -> list[str]:
    return [w.instance_id for w in WaitingList(env.client("dynamodb"), env.catalog_table).all()
            if w.build_id == build_id]


def stop_event(instance_id: str, state: str = "stopped") -> dict[str, Any]:
    return {"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
            "detail": {"instance-id": instance_id, "state": state}}


def a_build(env: StepEnv, script: str) -> tuple[str, str, str]:
    recipe = unique("wait")
    build_id = build_id_of(recipe)
    seed(env, {"recipe": recipe, "build_id": build_id, "status": "BUILDING"})
    return recipe, build_id, raw_builder(env, recipe, build_id, script)


def test_the_stop_event_resumes_the_waiting_execution(env: StepEnv,
                                                      tokens: TaskTokens) -> None:
    recipe, build_id, instance = a_build(env, HANG)
    wait_state(env, instance, "running")
    execution, token = tokens.wait()

    parked = register_wait({"token": token, "recipe": recipe, "build_id": build_id,
                            "instance_id": instance}, env)

    assert parked == {"state": "running", "resumed": False}
    record = env.catalog.get(recipe, build_id)
    assert (record["task_token"], record["instance_id"]) == (token, instance)
    assert waiting(env, build_id) == [instance]
    assert tokens.status(execution) == "RUNNING"

    env.client("ec2").stop_instances(InstanceIds=[instance])
    wait_state(env, instance, "stopped")
    assert on_instance_state(stop_event(instance), env) == {"build_id": build_id,
                                                            "resumed": True}
    assert tokens.outcome(execution) == ("SUCCEEDED", {"state": "stopped", "source": "event"})
    assert waiting(env, build_id) == []
    # The event delivered twice (EventBridge is at least once): the answered token left
    # the record, so nothing more happens.
    assert on_instance_state(stop_event(instance), env) == {"ignored": "no waiting task"}
    assert "task_token" not in env.catalog.get(recipe, build_id)


def test_a_builder_that_stopped_before_the_token_was_stored_is_resumed_at_once(
        env: StepEnv, tokens: TaskTokens) -> None:
    recipe, build_id, instance = a_build(env, SCRIPT)
    wait_state(env, instance, "stopped")  # its stop event came before AwaitStop ran
    execution, token = tokens.wait()

    parked = register_wait({"token": token, "recipe": recipe, "build_id": build_id,
                            "instance_id": instance}, env)

    assert parked == {"state": "stopped", "resumed": True}
    assert tokens.outcome(execution) == ("SUCCEEDED", {"state": "stopped", "source": "poll"})
    assert waiting(env, build_id) == []


def test_a_stale_token_keeps_the_marker_for_the_stop_check(env: StepEnv,
                                                           tokens: TaskTokens) -> None:
    recipe, build_id, instance = a_build(env, HANG)
    wait_state(env, instance, "running")
    _, token = tokens.wait()
    register_wait({"token": token, "recipe": recipe, "build_id": build_id,
                   "instance_id": instance}, env)
    # The task timed out and a retried AwaitStop made a new token (not yet stored).
    env.client("stepfunctions").send_task_success(taskToken=token, output="{}")
    env.client("ec2").stop_instances(InstanceIds=[instance])
    wait_state(env, instance, "stopped")

    assert on_instance_state(stop_event(instance), env)["resumed"] is False
    assert waiting(env, build_id) == [instance]


@pytest.mark.parametrize("case", ["running", "no instance id", "not a builder",
                                  "no waiting task", "another attempt"])
def test_events_about_anything_else_are_ignored(env: StepEnv, tokens: TaskTokens,
                                                case: str) -> None:
    recipe, build_id, instance = a_build(env, SCRIPT)
    wait_state(env, instance, "stopped")
    execution, token = tokens.wait()
    if case == "another attempt":  # the record waits on this build's newer builder
        env.catalog.update(recipe, build_id, task_token=token, instance_id="i-0aaaaaaaaaaaaaaaa")
    if case == "not a builder":
        instance = env.client("ec2").run_instances(
            ImageId=env.client("ec2").describe_instances(InstanceIds=[instance])[
                "Reservations"][0]["Instances"][0]["ImageId"],
            MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        env.client("ec2").stop_instances(InstanceIds=[instance])
    event = {"running": stop_event(instance, "running"),
             "no instance id": {"detail": {"state": "stopped"}}}.get(case, stop_event(instance))
    expected = {"running": "not a stop", "no instance id": "not a stop",
                "not a builder": "not an amiforge builder"}.get(case, "no waiting task")

    assert on_instance_state(event, env) == {"ignored": expected}
    assert tokens.status(execution) == "RUNNING"
