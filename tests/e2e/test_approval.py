"""Issue 20, the approval gate: ``release: {approval: manual}`` holds a built image
AWAITING_APPROVAL (no copies, no sharing, no ``latest``) until ``amiforge approve`` or
``amiforge reject``, or until ``approval_timeout_hours`` (scaled by the stack's
SecondsPerMinute) pass. Through the real CLI and the deployed stack on the local cloud."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from amiforge.core.tags import BUILD_ID
from amiforge.localcloud.testing import images_of_build, receive_all, snapshots_of_build, wait_for

pytestmark = pytest.mark.e2e
MANUAL = "release:\n  approval: manual\n"


def subscribe(stack: Any, name: str) -> str:
    """An SQS queue subscribed to the stack's topic (raw delivery): its URL."""
    sqs = stack.client("sqs")
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    stack.client("sns").subscribe(TopicArn=stack.topic_arn, Protocol="sqs", Endpoint=arn,
                                  Attributes={"RawMessageDelivery": "true"})
    return str(queue)


def notifications(stack: Any, queue: str, build_id: str, status: str) -> list[dict]:
    found: list[dict] = []

    def seen() -> list[dict]:
        found.extend(m for m in receive_all(stack.client("sqs"), queue, 1, timeout=60)
                     if isinstance(m, dict))
        return [m for m in found if m.get("build_id") == build_id and m.get("status") == status]

    return wait_for(seen, timeout=60, what=f"a {status} notification of {build_id}")


def status_of(stack: Any, recipe: str, build_id: str, wanted: str, timeout: float = 120) -> dict:
    return wait_for(lambda: (r := stack.catalog.get(recipe, build_id)) and r["status"] == wanted
                    and r, timeout=timeout, interval=0.5, what=f"{build_id} to be {wanted}")


def awaiting_build(amiforge: Any, *args: str) -> dict:
    """Run a waiting command (``publish --wait DIR``, ``build --wait ...``): it returns once
    the build is parked at the gate (exit 0, one line naming the commands)."""
    waited = amiforge(*args, output="json")
    assert waited.exit_code == 0, waited.output
    (build,) = json.loads(waited.stdout)["builds"]
    assert build["status"] == "AWAITING_APPROVAL" and build["image_id"], build
    return dict(build)


def test_approve_releases_and_reject_removes_the_image(amiforge: Any, aws: Any, stack: Any,
                                                       recipe_dir: Any) -> None:
    name = f"gated-{uuid.uuid4().hex[:6]}"
    queue = subscribe(stack, f"approvals-{name}")
    directory = recipe_dir(name, extra=MANUAL)
    first = awaiting_build(amiforge, "publish", "--wait", str(directory))
    build_id, image_id = first["build_id"], first["image_id"]

    # Waiting: the status says so and how to answer; nothing is released yet.
    shown = json.loads(amiforge("status", output="json").stdout)
    (row,) = [r for r in shown["recipes"] if r["recipe"] == name]
    assert row["last_status"] == "AWAITING_APPROVAL" and row["latest_image"] is None
    assert f"`amiforge approve {build_id}`" in row["summary"]
    (waiting,) = [a for a in shown["awaiting_approval"] if a["recipe"] == name]
    assert (waiting["build_id"], waiting["image_id"]) == (build_id, image_id)
    assert waiting["approve"] == f"amiforge approve {build_id}"
    assert waiting["reject"] == f"amiforge reject {build_id} --reason TEXT"
    text = amiforge("status").stdout
    assert f"awaiting approval: {name} build {build_id}" in text
    # The token is the record's, never the output's.
    token = stack.catalog.get(name, build_id)["approval_token"]
    history = amiforge("history", name, output="json").stdout
    assert token not in history and token not in json.dumps(shown)
    assert "approval_token" not in history
    assert amiforge("latest", name).exit_code == 2
    (asked,) = notifications(stack, queue, build_id, "AWAITING_APPROVAL")
    assert asked["image_id"] == image_id and asked["recipe"] == name
    assert asked["approve"] == f"amiforge approve {build_id}"
    assert asked["reject"] == f"amiforge reject {build_id} --reason TEXT"
    assert image_id in asked["message"] and f"`amiforge approve {build_id}`" in asked["message"]
    execution = stack.client("stepfunctions").describe_execution(
        executionArn=first["execution_arn"])
    assert execution["status"] == "RUNNING"
    # The wait keeps nothing running: the builder went once the image was made.
    builders = [i for r in aws.client("ec2").describe_instances(
        Filters=[{"Name": f"tag:{BUILD_ID}", "Values": [build_id]}])["Reservations"]
        for i in r["Instances"]]
    assert builders and {i["State"]["Name"] for i in builders} <= {"shutting-down",
                                                                   "terminated"}

    # Approve: the release goes on; latest moves to the image.
    approved = amiforge("approve", build_id, output="json")
    assert approved.exit_code == 0, approved.output
    answer = json.loads(approved.stdout)
    assert (answer["version"], answer["decision"], answer["build_id"], answer["image_id"],
            answer["already"]) == (1, "approved", build_id, image_id, False)
    record = status_of(stack, name, build_id, "AVAILABLE")
    assert record["approved_by"] and "approval_token" not in record
    assert amiforge("latest", name).stdout.strip() == image_id
    again = amiforge("approve", build_id, output="json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["already"] is True
    assert "was already approved" in amiforge("approve", build_id).stdout

    # A second build, rejected: FAILED with the reason, image and snapshots gone, latest
    # still the approved one.
    second = awaiting_build(amiforge, "build", "--wait", "--rebuild", name)
    rejected_id, rejected_image = second["build_id"], second["image_id"]
    assert amiforge("latest", name).stdout.strip() == image_id
    assert images_of_build(aws.client("ec2"), rejected_id)
    refused = amiforge("reject", rejected_id, "--reason", " ")
    assert refused.exit_code == 2 and "reject needs --reason TEXT" in refused.stderr
    rejected = amiforge("reject", rejected_id, "--reason", "CVE-2026-0001 in openssl",
                        output="json")
    assert rejected.exit_code == 0, rejected.output
    answer = json.loads(rejected.stdout)
    assert (answer["decision"], answer["image_id"], answer["reason"]) == (
        "rejected", rejected_image, "CVE-2026-0001 in openssl")
    record = status_of(stack, name, rejected_id, "FAILED")
    assert record["reason"].startswith("rejected: CVE-2026-0001 in openssl (by ")
    assert record["reject_reason"] == "CVE-2026-0001 in openssl"
    wait_for(lambda: images_of_build(aws.client("ec2"), rejected_id) == [], timeout=60,
             what="the rejected image to be removed")
    wait_for(lambda: snapshots_of_build(aws.client("ec2"), rejected_id) == [], timeout=60,
             what="the rejected image's snapshots to be removed")
    assert amiforge("latest", name).stdout.strip() == image_id
    assert images_of_build(aws.client("ec2"), build_id)  # the approved one stays

    # Answers to a build that is not waiting: exit 2, naming it and its status.
    for args in (("approve", rejected_id), ("reject", rejected_id, "--reason", "x"),
                 ("reject", build_id, "--reason", "late")):
        late = amiforge(*args)
        assert late.exit_code == 2, (args, late.output)
        assert "not AWAITING_APPROVAL" in late.stderr and args[1] in late.stderr
    unknown = amiforge("approve", f"{name}-0123456789abcdef0123")
    assert unknown.exit_code == 2 and "is not a build of this stack" in unknown.stderr


def test_an_unanswered_approval_times_out_and_removes_the_image(
        amiforge: Any, aws: Any, stack: Any, recipe_dir: Any) -> None:
    # One hour of approval is 60 s on the local cloud (SecondsPerMinute=1).
    name = f"unanswered-{uuid.uuid4().hex[:6]}"
    directory = recipe_dir(name, extra=MANUAL + "  approval_timeout_hours: 1\n")
    build = awaiting_build(amiforge, "publish", "--wait", str(directory))
    build_id = build["build_id"]
    record = status_of(stack, name, build_id, "FAILED", timeout=300)
    assert record["reason"].startswith("approval timed out")
    wait_for(lambda: images_of_build(aws.client("ec2"), build_id) == [], timeout=60,
             what="the unapproved image to be removed")
    wait_for(lambda: snapshots_of_build(aws.client("ec2"), build_id) == [], timeout=60,
             what="the unapproved image's snapshots to be removed")
    assert amiforge("latest", name).exit_code == 2
    late = amiforge("approve", build_id)
    assert late.exit_code == 2 and f"build {build_id} is FAILED" in late.stderr


def test_a_build_awaiting_approval_is_in_flight_until_cancelled(
        amiforge: Any, aws: Any, stack: Any, recipe_dir: Any) -> None:
    name = f"held-{uuid.uuid4().hex[:6]}"
    build = awaiting_build(amiforge, "publish", "--wait", str(recipe_dir(name, extra=MANUAL)))
    build_id, image_id = build["build_id"], build["image_id"]
    def builds_of_recipe() -> list[str]:
        pages = stack.client("stepfunctions").get_paginator("list_executions").paginate(
            stateMachineArn=stack.state_machine_arn)
        return [e["name"] for page in pages for e in page["executions"]
                if e["name"].startswith(f"{name}-")]

    # Detection and `build` follow it: no second build of the same key.
    assert amiforge("detect").exit_code == 0
    started = json.loads(amiforge("build", name, output="json").stdout)["builds"]
    assert (started[0]["started"], started[0]["build_id"]) == (False, build_id)
    assert builds_of_recipe() == [build_id]
    # The sweeper and retention leave its image alone; latest does not name it.
    assert amiforge("sweep").exit_code == 0
    assert amiforge("prune", name).exit_code == 0
    assert [i["ImageId"] for i in images_of_build(aws.client("ec2"), build_id)] == [image_id]
    assert stack.catalog.get(name, build_id)["status"] == "AWAITING_APPROVAL"
    assert amiforge("latest", name).exit_code == 2
    # Cancel ends the wait like any running build's: CANCELLED, image removed.
    cancelled = amiforge("cancel", build_id, "--reason", "not this week")
    assert cancelled.exit_code == 0, cancelled.output
    record = stack.catalog.get(name, build_id)
    assert (record["status"], record["reason"]) == ("CANCELLED", "not this week")
    assert "approval_token" not in record
    wait_for(lambda: images_of_build(aws.client("ec2"), build_id) == [], timeout=60,
             what="the cancelled build's image to be removed")
    late = amiforge("approve", build_id)
    assert late.exit_code == 2 and f"build {build_id} is CANCELLED" in late.stderr
