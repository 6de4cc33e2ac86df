"""AwaitImage and AwaitCopies on the local cloud, waiting by event: ``await_image`` parks
the token (one ``#image-waits`` marker per image) and answers at once if the image is
ready; EC2's "EC2 AMI State Change" event (``on_image_state``) or the image check
(``check_images``, the fallback for a lost event, and how copies are noticed) answer it
later. A failed image fails the task with EC2's reason. An event is never trusted: one
for an image no build waits for, from another region, or claiming "available" for an
image still pending resumes nothing. Real executions wait on the tokens; images stay
pending for the local cloud's ``image_pending_seconds`` or until a test finishes them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.helpers import COPY, HOME, Publish, TaskTokens, imaged, stopped

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import stepfunctions as sfn_api
from amiforge.aws.image_waits import ImageWaitList
from amiforge.aws.session import AwsContext
from amiforge.errors import InvalidEvent
from amiforge.localcloud.image_sim import FAILURE_REASON
from amiforge.localcloud.testing import wait_for
from amiforge.steps.distribute import distribute
from amiforge.steps.env import StepEnv
from amiforge.steps.image import create_image
from amiforge.steps.image_wait import await_image, check_images, on_image_state

PENDING = 60.0  # long enough that no image finishes by itself while a test looks at it:
# a test ends the wait with ``cloud.images.finish_now`` when it chooses (a slow machine
# could otherwise see the image available before the test parked its token)


@pytest.fixture(scope="module")
def tokens(aws: AwsContext) -> Iterator[TaskTokens]:
    machine = TaskTokens(aws)
    yield machine
    machine.close()


@pytest.fixture
def cloud(local_cloud: Any) -> Iterator[Any]:
    """The local cloud, its image pending time and fault knobs put back afterwards."""
    before, knobs = local_cloud.image_pending_seconds, local_cloud.faults.knobs()
    try:
        yield local_cloud
    finally:
        local_cloud.image_pending_seconds = before
        local_cloud.faults.configure(**knobs)


def markers(env: StepEnv, build_id: str) -> list[str]:
    return sorted(w.key for w in ImageWaitList(env.client("dynamodb"), env.catalog_table).all()
                  if w.build_id == build_id)


def ami_event(image_id: str, state: str = "available", region: str = HOME,
              reason: str = "") -> dict[str, Any]:
    return {"detail-type": "EC2 AMI State Change", "source": "aws.ec2", "region": region,
            "detail": {"ImageId": image_id, "State": state, "ErrorReason": reason}}


def failure_of(env: StepEnv, execution: str) -> tuple[str, str]:
    """(error, cause) the waiting task failed with, once the execution failed."""
    sfn = env.client("stepfunctions")
    wait_for(lambda: sfn.describe_execution(executionArn=execution)["status"] == "FAILED",
             timeout=20, what=f"{execution} to fail")
    (failed,) = [e["taskFailedEventDetails"] for e in sfn_api.history(sfn, execution)
                 if e["type"] == "TaskFailed"]
    return failed["error"], failed["cause"]


def image_state(env: StepEnv, image_id: str, region: str | None = None) -> str:
    return str((ec2_api.describe_image(env.client("ec2", region), image_id) or {}).get(
        "State", "gone"))


def created(env: StepEnv, published: Publish, cloud: Any, pending: float,
            **recipe: Any) -> dict[str, Any]:
    """A build's state right after CreateImage, its image pending for ``pending`` s."""
    state = stopped(env, published(**recipe))
    cloud.image_pending_seconds = pending
    state["image"] = create_image(state, env)
    return state


def parked(state: dict[str, Any], token: str, kind: str = "image") -> dict[str, Any]:
    event = {"token": token, "kind": kind, "build": state["build"], "image": state["image"]}
    if kind == "copies":
        event["distribution"] = state["distribution"]
    return event


def test_the_ami_event_resumes_the_waiting_execution(env: StepEnv, published: Publish,
                                                     cloud: Any, tokens: TaskTokens) -> None:
    state = created(env, published, cloud, PENDING)
    build_id, image_id = state["build"]["build_id"], state["image"]["image_id"]
    execution, token = tokens.wait()

    assert await_image(parked(state, token), env) == {
        "state": "pending", "pending": [HOME], "source": "poll"}
    assert markers(env, build_id) == [f"{HOME}#{image_id}"]
    assert tokens.status(execution) == "RUNNING"

    assert cloud.images.finish_now(image_id)
    assert image_state(env, image_id) == "available"
    assert on_image_state(ami_event(image_id), env) == {
        "resumed": True, "state": "available", "source": "event"}
    status, output = tokens.outcome(execution)
    described = ec2_api.describe_image(env.client("ec2"), image_id)
    assert described is not None
    assert (status, output) == ("SUCCEEDED", {**state["image"], "state": "available",
                                              "snapshot_ids": ec2_api.snapshot_ids(described)})
    assert output["snapshot_ids"]
    assert markers(env, build_id) == []
    # Delivered twice (EventBridge is at least once): no build waits any more.
    assert on_image_state(ami_event(image_id), env) == {
        "ignored": "no build waits for this image"}


def test_an_image_already_available_is_answered_at_once(env: StepEnv, published: Publish,
                                                        cloud: Any, tokens: TaskTokens) -> None:
    state = created(env, published, cloud, 0)  # its event came before the token was parked
    execution, token = tokens.wait()

    assert await_image(parked(state, token), env) == {
        "resumed": True, "state": "available", "source": "poll"}
    assert tokens.outcome(execution)[1]["state"] == "available"
    assert markers(env, state["build"]["build_id"]) == []


def test_a_failed_image_fails_the_task_with_ec2s_reason(env: StepEnv, published: Publish,
                                                        cloud: Any, tokens: TaskTokens) -> None:
    cloud.faults.configure(image_fail_rate=1.0, image_fail_kinds=["create"])
    state = created(env, published, cloud, PENDING)
    image_id = state["image"]["image_id"]
    execution, token = tokens.wait()
    assert await_image(parked(state, token), env)["state"] == "pending"
    assert cloud.images.finish_now(image_id)
    assert image_state(env, image_id) == "failed"

    outcome = on_image_state(ami_event(image_id, "failed", reason=FAILURE_REASON), env)

    cause = f"image {image_id} in {HOME} is failed: {FAILURE_REASON}"
    assert outcome == {"failed": cause, "answered": True, "source": "event"}
    assert failure_of(env, execution) == ("BuildFailed", cause)
    assert markers(env, state["build"]["build_id"]) == []


def test_a_lost_event_is_caught_by_the_image_check(env: StepEnv, published: Publish,
                                                   cloud: Any, tokens: TaskTokens) -> None:
    state = created(env, published, cloud, PENDING)
    build_id, image_id = state["build"]["build_id"], state["image"]["image_id"]
    execution, token = tokens.wait()
    await_image(parked(state, token), env)

    early = check_images(env)  # still pending: nothing is answered, the marker stays
    assert build_id not in early["resumed"] and early["pending"] >= 1
    assert markers(env, build_id) == [f"{HOME}#{image_id}"]
    assert cloud.images.finish_now(image_id)  # ... and its event never arrives

    report = check_images(env)

    assert build_id in report["resumed"] and report["errors"] == 0
    assert tokens.outcome(execution)[0] == "SUCCEEDED"
    assert markers(env, build_id) == []


@pytest.mark.parametrize("case", ["not ours", "forged available", "another region",
                                  "not a final state"])
def test_events_no_build_waits_for_resume_nothing(env: StepEnv, published: Publish,
                                                  cloud: Any, tokens: TaskTokens,
                                                  case: str) -> None:
    state = created(env, published, cloud, PENDING)  # pending throughout the test
    image_id = state["image"]["image_id"]
    execution, token = tokens.wait()
    await_image(parked(state, token), env)
    strangers = stopped(env, published())
    stranger = env.client("ec2").create_image(
        InstanceId=strangers["launch"]["instance_id"], Name=f"not-ours-{image_id}")["ImageId"]

    event, expected = {
        "not ours": (ami_event(stranger), {"ignored": "no build waits for this image"}),
        "forged available": (ami_event(image_id),
                             {"state": "pending", "pending": [HOME], "source": "event"}),
        "another region": (ami_event(image_id, region=COPY),
                           {"ignored": "no build waits for this image"}),
        "not a final state": (ami_event(image_id, "pending"), {"ignored": "not a final state"}),
    }[case]

    assert on_image_state(event, env) == expected
    assert tokens.status(execution) == "RUNNING"
    assert markers(env, state["build"]["build_id"]) == [f"{HOME}#{image_id}"]


def test_awaitcopies_resumes_once_every_copy_is_available(env: StepEnv, published: Publish,
                                                          cloud: Any,
                                                          tokens: TaskTokens) -> None:
    state = imaged(env, published(image=f"regions: [{COPY}]\n"))
    cloud.image_pending_seconds = PENDING
    state["distribution"] = distribute(state, env)
    copy = state["distribution"]["images"][COPY]
    assert (state["distribution"]["ready"], state["distribution"]["pending"]) == (False, [COPY])
    execution, token = tokens.wait()

    assert await_image(parked(state, token, "copies"), env)["state"] == "pending"
    assert markers(env, state["build"]["build_id"]) == [f"{COPY}#{copy}"]
    assert cloud.images.finish_now(copy)
    assert image_state(env, copy, COPY) == "available"
    # The copy's event went to the rules of its own region: the image check notices it.
    report = check_images(env)

    assert state["build"]["build_id"] in report["resumed"]
    assert tokens.outcome(execution) == ("SUCCEEDED", {
        "images": {HOME: state["image"]["image_id"], COPY: copy}, "ready": True,
        "pending": []})
    assert markers(env, state["build"]["build_id"]) == []


def test_a_failed_copy_fails_awaitcopies(env: StepEnv, published: Publish, cloud: Any,
                                         tokens: TaskTokens) -> None:
    state = imaged(env, published(image=f"regions: [{COPY}]\n"))
    cloud.faults.configure(image_fail_rate=1.0, image_fail_kinds=["copy"])
    cloud.image_pending_seconds = PENDING
    state["distribution"] = distribute(state, env)
    copy = state["distribution"]["images"][COPY]
    execution, token = tokens.wait()
    assert await_image(parked(state, token, "copies"), env)["state"] == "pending"
    assert cloud.images.finish_now(copy)
    assert image_state(env, copy, COPY) == "failed"

    # A forwarded event from the copy's region works as well as the check.
    outcome = on_image_state(ami_event(copy, "failed", region=COPY), env)

    assert outcome["failed"] == f"copy {copy} in {COPY} is failed: {FAILURE_REASON}"
    assert failure_of(env, execution) == ("BuildFailed", outcome["failed"])
    assert markers(env, state["build"]["build_id"]) == []


def test_a_copies_wait_without_copies_is_refused_naming_the_field(env: StepEnv) -> None:
    event = {"token": "t", "kind": "copies", "build": {"recipe": "web", "build_id": "web-1"},
             "image": {"image_id": "ami-0fedcba9876543210"}}
    with pytest.raises(InvalidEvent, match="await_image event refused: distribution is "
                                           "missing"):
        await_image(event, env)
