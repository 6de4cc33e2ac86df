"""The stop event's one invocation, on the local cloud: it judges the stopped builder,
creates its image and resumes AwaitStop with both; whatever it cannot decide is left to
the Verify and CreateImage states, as before. Real builders (simulated), real executions
waiting on their tokens (:class:`tests.helpers.TaskTokens`), the real catalog.

One image per build, whatever arrives: the event twice, twice at once, a forged event,
an event about another build's builder.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from tests.helpers import Publish, TaskTokens, launched, wait_state

from amiforge.aws.session import AwsContext
from amiforge.core.tags import BUILD_ID
from amiforge.steps.env import StepEnv
from amiforge.steps.image import create_image
from amiforge.steps.stop_check import check_waiting
from amiforge.steps.verify import ConsoleNotReady, verify
from amiforge.steps.wait_stop import on_instance_state, register_wait

HANG = "# amiforge-sim: hang\n"
FAIL = "# amiforge-sim: fail\necho installing\n"


@pytest.fixture(scope="module")
def tokens(aws: AwsContext) -> Iterator[TaskTokens]:
    machine = TaskTokens(aws)
    yield machine
    machine.close()


@pytest.fixture(scope="module", autouse=True)
def quick_builders(local_cloud: Any) -> Iterator[None]:
    """Builders that run long enough (1.5 s) for AwaitStop to park its token first, as
    any real build does (conftest's 0.1 s builders stop before it)."""
    before = local_cloud.builder_seconds
    local_cloud.builder_seconds = 1.5
    try:
        yield
    finally:
        local_cloud.builder_seconds = before


def stop_event(instance_id: str, state: str = "stopped") -> dict[str, Any]:
    return {"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
            "detail": {"instance-id": instance_id, "state": state}}


def waiting_build(env: StepEnv, tokens: TaskTokens, published: Publish,
                  script: str = "echo hello\n") -> tuple[dict[str, Any], str]:
    """A launched build whose AwaitStop has run (as the state machine calls it):
    (the execution state, the waiting execution's ARN)."""
    execution, token = tokens.wait()
    state = launched(env, published(script=script))
    build, launch = state["build"], state["launch"]
    register_wait({"token": token, "recipe": build["recipe"], "build_id": build["build_id"],
                   "instance_id": launch["instance_id"], "build": build, "launch": launch},
                  env)
    return state, execution


def images(env: StepEnv, build_id: str) -> list[str]:
    return [i["ImageId"] for i in env.client("ec2").describe_images(
        Owners=["self"], Filters=[{"Name": f"tag:{BUILD_ID}", "Values": [build_id]}])["Images"]]


@contextmanager
def refused(env: StepEnv, operation: str, code: str, status: int) -> Iterator[list[int]]:
    """EC2 answers ``operation`` with ``code`` (botocore's own before-call hook: the
    answer is parsed and raised as AWS's would be); yields the list of refused calls."""
    calls: list[int] = []

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        calls.append(1)
        return (AWSResponse("https://ec2.test", status, {}, None),
                {"Error": {"Code": code, "Message": f"{operation} refused by the test"},
                 "ResponseMetadata": {"HTTPStatusCode": status}})

    events, hook = env.client("ec2").meta.events, uuid.uuid4().hex
    events.register(f"before-call.ec2.{operation}", answer, unique_id=hook)
    try:
        yield calls
    finally:
        events.unregister(f"before-call.ec2.{operation}", unique_id=hook)


def test_the_stop_event_judges_the_builder_makes_the_image_and_resumes_the_build(
        env: StepEnv, tokens: TaskTokens, published: Publish) -> None:
    state, execution = waiting_build(env, tokens, published)
    build, instance_id = state["build"], state["launch"]["instance_id"]
    wait_state(env, instance_id, "stopped")

    result = on_instance_state(stop_event(instance_id), env)

    assert result == {"build_id": build["build_id"], "resumed": True}
    status, output = tokens.outcome(execution)
    (image_id,) = images(env, build["build_id"])
    assert status == "SUCCEEDED"
    assert output["state"] == "stopped" and output["source"] == "event"
    assert output["verdict"] == "success"
    assert output["image"]["image_id"] == image_id and output["image"]["polls"] == 0
    record = env.catalog.get(build["recipe"], build["build_id"])
    assert record["image_id"] == image_id and record["image_name"] == output["image"]["name"]
    assert [(a["attempt"], a["outcome"]) for a in record["attempts"]] == [(1, "succeeded")]
    assert "task_token" not in record  # answered: a later event finds nothing to resume


def test_the_event_twice_and_twice_at_once_makes_one_image(
        env: StepEnv, tokens: TaskTokens, published: Publish) -> None:
    state, execution = waiting_build(env, tokens, published)
    build, instance_id = state["build"], state["launch"]["instance_id"]
    wait_state(env, instance_id, "stopped")
    results: list[dict[str, Any]] = []

    def deliver() -> None:  # each delivery is its own invocation, with its own env
        results.append(on_instance_state(stop_event(instance_id),
                                         dataclasses.replace(env)))

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deliver()  # and once more, late

    assert sum(bool(r.get("resumed")) for r in results) == 1, results
    assert len(images(env, build["build_id"])) == 1
    assert tokens.outcome(execution)[0] == "SUCCEEDED"
    record = env.catalog.get(build["recipe"], build["build_id"])
    assert len(record["attempts"]) == 1


def test_a_forged_stop_event_for_a_running_builder_changes_nothing(
        env: StepEnv, tokens: TaskTokens, published: Publish) -> None:
    state, execution = waiting_build(env, tokens, published, HANG)
    instance_id = state["launch"]["instance_id"]
    wait_state(env, instance_id, "running")

    assert on_instance_state(stop_event(instance_id), env) == {
        "ignored": f"not a stop: EC2 says {instance_id} is running"}
    assert tokens.status(execution) == "RUNNING"
    assert images(env, state["build"]["build_id"]) == []


def test_an_event_resumes_only_the_build_its_instance_belongs_to(
        env: StepEnv, tokens: TaskTokens, published: Publish) -> None:
    mine, my_execution = waiting_build(env, tokens, published)
    other, other_execution = waiting_build(env, tokens, published, HANG)
    wait_state(env, mine["launch"]["instance_id"], "stopped")
    # A context on the record that names another build (or instance) is not used: the
    # build is resumed with its state alone, and Verify judges it.
    env.catalog.update(mine["build"]["recipe"], mine["build"]["build_id"],
                       stop_context=json.dumps({"build": other["build"],
                                                "launch": other["launch"]}))

    on_instance_state(stop_event(mine["launch"]["instance_id"]), env)

    assert tokens.outcome(my_execution) == ("SUCCEEDED", {"state": "stopped",
                                                          "source": "event"})
    assert tokens.status(other_execution) == "RUNNING"
    assert images(env, mine["build"]["build_id"]) == []
    assert images(env, other["build"]["build_id"]) == []


def test_a_missing_marker_is_left_to_verify_whose_retry_and_relaunch_still_work(
        env: StepEnv, tokens: TaskTokens, published: Publish) -> None:
    state, execution = waiting_build(env, tokens, published, HANG)
    instance_id = state["launch"]["instance_id"]
    wait_state(env, instance_id, "running")
    env.client("ec2").stop_instances(InstanceIds=[instance_id])  # stopped, no marker
    wait_state(env, instance_id, "stopped")

    on_instance_state(stop_event(instance_id), env)

    assert tokens.outcome(execution) == ("SUCCEEDED", {"state": "stopped", "source": "event"})
    assert images(env, state["build"]["build_id"]) == []
    # Verified? sends it to Verify: ConsoleNotReady (retried), then AttemptFailed.
    with pytest.raises(ConsoleNotReady):
        verify(state, env)
    caught = {"Error": "ConsoleNotReady", "Cause": ""}
    assert verify({**state, "failed_attempt": caught}, env)["outcome"] == "retry"


def test_a_failure_marker_is_left_to_verify(env: StepEnv, tokens: TaskTokens,
                                            published: Publish) -> None:
    state, execution = waiting_build(env, tokens, published, FAIL)
    wait_state(env, state["launch"]["instance_id"], "stopped")

    on_instance_state(stop_event(state["launch"]["instance_id"]), env)

    assert tokens.outcome(execution) == ("SUCCEEDED", {"state": "stopped", "source": "event"})
    assert images(env, state["build"]["build_id"]) == []
    assert verify(state, env)["outcome"] == "retry"


@pytest.mark.parametrize("code, status", [("RequestLimitExceeded", 503),
                                          ("InvalidParameterValue", 400)])
def test_a_create_image_refused_at_the_stop_event_is_left_to_the_create_image_state(
        env: StepEnv, tokens: TaskTokens, published: Publish, code: str,
        status: int) -> None:
    state, execution = waiting_build(env, tokens, published)
    build, instance_id = state["build"], state["launch"]["instance_id"]
    wait_state(env, instance_id, "stopped")

    with refused(env, "CreateImage", code, status) as calls:
        assert on_instance_state(stop_event(instance_id), env)["resumed"] is True

    assert calls  # the call was made, and refused
    status_, output = tokens.outcome(execution)
    assert status_ == "SUCCEEDED"
    assert output["verdict"] == "success" and "image" not in output
    assert code in output["image_error"]["Cause"] or code in output["image_error"]["Error"]
    assert images(env, build["build_id"]) == []
    # Verified? sends it to the CreateImage state, with its own Retry and Catch.
    made = create_image(state, env)
    assert images(env, build["build_id"]) == [made["image_id"]]
    assert create_image(state, env)["image_id"] == made["image_id"]  # a retry: no second


def test_a_builder_stopped_before_await_stop_is_judged_and_imaged_by_await_stop(
        env: StepEnv, tokens: TaskTokens, published: Publish) -> None:
    execution, token = tokens.wait()
    state = launched(env, published())
    build, launch = state["build"], state["launch"]
    wait_state(env, launch["instance_id"], "stopped")  # its stop event came first

    parked = register_wait({"token": token, "recipe": build["recipe"],
                            "build_id": build["build_id"],
                            "instance_id": launch["instance_id"], "build": build,
                            "launch": launch}, env)

    assert parked == {"state": "stopped", "resumed": True}
    status, output = tokens.outcome(execution)
    assert (status, output["source"], output["verdict"]) == ("SUCCEEDED", "poll", "success")
    assert images(env, build["build_id"]) == [output["image"]["image_id"]]


def test_the_stop_check_judges_and_images_a_builder_whose_event_was_lost(
        env: StepEnv, tokens: TaskTokens, published: Publish) -> None:
    state, execution = waiting_build(env, tokens, published)
    build = state["build"]
    wait_state(env, state["launch"]["instance_id"], "stopped")  # and no event handled

    report = check_waiting(env)

    assert build["build_id"] in report["resumed"]
    status, output = tokens.outcome(execution)
    assert (status, output["source"], output["verdict"]) == ("SUCCEEDED", "schedule",
                                                             "success")
    assert images(env, build["build_id"]) == [output["image"]["image_id"]]
    # The event, late: nothing more.
    assert on_instance_state(stop_event(state["launch"]["instance_id"]), env) == {
        "ignored": "no waiting task"}
    assert len(images(env, build["build_id"])) == 1
