"""The local cloud's images take time as EC2's do: CreateImage and CopyImage leave the image
``pending`` for ``image_pending_seconds``, then ``available`` (or ``failed``, by the
``image_fail_rate`` directive), and EC2's "EC2 AMI State Change" events reach the rules of
the image's region. With the default pending time of 0 an image is available before the
call returns, as the rest of the suite expects, and its events are still sent."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from amiforge.localcloud.image_sim import FAILURE_REASON
from amiforge.localcloud.testing import wait_for

OTHER = "eu-west-1"
HELD = 600.0  # pending "for ever": the test finishes the image with ``finish_now``


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class AmiEvents:
    """An SQS queue behind a rule for "EC2 AMI State Change" on ``region``'s default bus."""

    def __init__(self, region: str) -> None:
        self.sqs = boto3.client("sqs", region_name=region)
        self.url = self.sqs.create_queue(QueueName=unique("ami-events"))["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        events = boto3.client("events", region_name=region)
        rule = unique("ami")
        events.put_rule(Name=rule, EventPattern=json.dumps(
            {"source": ["aws.ec2"], "detail-type": ["EC2 AMI State Change"]}))
        events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn}])
        self.seen: list[dict[str, Any]] = []

    def states(self, image_id: str, count: int) -> list[dict[str, Any]]:
        """The events about ``image_id``, once ``count`` of them arrived."""
        def enough() -> list[dict[str, Any]] | None:
            for message in self.sqs.receive_message(QueueUrl=self.url,
                                                    MaxNumberOfMessages=10).get("Messages", []):
                self.seen.append(json.loads(message["Body"]))
            mine = [e for e in self.seen if e["detail"]["ImageId"] == image_id]
            return mine if len(mine) >= count else None
        return wait_for(enough, timeout=15, what=f"{count} AMI events of {image_id}")


@pytest.fixture
def pending_for(local_cloud: Any) -> Iterator[Any]:
    before, knobs = local_cloud.image_pending_seconds, local_cloud.faults.knobs()

    def set_pending(seconds: float) -> None:
        local_cloud.image_pending_seconds = seconds
    try:
        yield set_pending
    finally:
        local_cloud.image_pending_seconds = before
        local_cloud.faults.configure(**knobs)


def an_instance(ec2: Any) -> str:
    base = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    return str(ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)[
        "Instances"][0]["InstanceId"])


def state_of(ec2: Any, image_id: str) -> dict[str, Any]:
    image: dict[str, Any] = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    return image


def test_an_image_is_pending_for_the_configured_time_then_available(
        local_cloud: Any, pending_for: Any) -> None:
    ec2 = boto3.client("ec2")
    events = AmiEvents(local_cloud.region)
    pending_for(3.0)  # long enough to be seen pending on a loaded machine

    image_id = ec2.create_image(InstanceId=an_instance(ec2), Name=unique("img"))["ImageId"]

    assert state_of(ec2, image_id)["State"] == "pending"
    assert image_id in local_cloud.images.pending()
    wait_for(lambda: state_of(ec2, image_id)["State"] == "available", timeout=10,
             what="the image to become available")
    pending, available = events.states(image_id, 2)
    assert (pending["detail"]["State"], available["detail"]["State"]) == ("pending", "available")
    assert available["detail-type"] == "EC2 AMI State Change"
    assert available["source"] == "aws.ec2" and available["region"] == local_cloud.region
    assert available["resources"] == [f"arn:aws:ec2:{local_cloud.region}::image/{image_id}"]
    assert available["detail"]["ErrorReason"] == ""


def test_by_default_an_image_is_available_at_once_and_still_announced(
        local_cloud: Any) -> None:
    assert local_cloud.image_pending_seconds == 0
    ec2 = boto3.client("ec2")
    events = AmiEvents(local_cloud.region)

    image_id = ec2.create_image(InstanceId=an_instance(ec2), Name=unique("img"))["ImageId"]

    assert state_of(ec2, image_id)["State"] == "available"
    assert [e["detail"]["State"] for e in events.states(image_id, 2)] == ["pending",
                                                                          "available"]


def test_a_fail_directive_fails_copies_in_their_region_with_a_reason(
        local_cloud: Any, pending_for: Any) -> None:
    ec2, there = boto3.client("ec2"), boto3.client("ec2", region_name=OTHER)
    events = AmiEvents(OTHER)
    source = ec2.create_image(InstanceId=an_instance(ec2), Name=unique("img"))["ImageId"]
    local_cloud.faults.configure(image_fail_rate=1.0, image_fail_kinds=["copy"])
    pending_for(HELD)

    copy = there.copy_image(SourceImageId=source, SourceRegion=local_cloud.region,
                            Name=unique("copy"))["ImageId"]

    assert state_of(there, copy)["State"] == "pending"
    assert local_cloud.images.finish_now(copy)
    failed = state_of(there, copy)
    assert failed["State"] == "failed"
    assert failed["StateReason"]["Message"] == FAILURE_REASON
    assert state_of(ec2, source)["State"] == "available"  # only copies were told to fail
    last = events.states(copy, 2)[-1]
    assert (last["region"], last["detail"]["State"], last["detail"]["ErrorReason"]) == (
        OTHER, "failed", FAILURE_REASON)
    assert local_cloud.faults.stats()["failed_images"].get("copy", 0) >= 1


def test_an_image_deregistered_while_pending_never_becomes_available(
        local_cloud: Any, pending_for: Any) -> None:
    ec2 = boto3.client("ec2")
    pending_for(HELD)
    from moto.ec2.models import ec2_backends

    image_id = ec2.create_image(InstanceId=an_instance(ec2), Name=unique("img"))["ImageId"]
    ami = ec2_backends[local_cloud.account][local_cloud.region].amis[image_id]
    ec2.deregister_image(ImageId=image_id)

    assert local_cloud.images.finish_now(image_id)  # its snapshots are done ...
    assert image_id not in local_cloud.images.pending()
    assert ami.state == "pending"  # ... but no late "available" for a gone image


def test_finish_now_ends_one_images_wait_and_announces_it(local_cloud: Any,
                                                          pending_for: Any) -> None:
    ec2 = boto3.client("ec2")
    events = AmiEvents(local_cloud.region)
    pending_for(HELD)
    held, finished = (ec2.create_image(InstanceId=an_instance(ec2), Name=unique("img"))[
        "ImageId"] for _ in range(2))

    assert local_cloud.images.finish_now(finished)

    assert state_of(ec2, finished)["State"] == "available"
    assert [e["detail"]["State"] for e in events.states(finished, 2)] == ["pending",
                                                                          "available"]
    assert state_of(ec2, held)["State"] == "pending"  # only the one named
    assert held in local_cloud.images.pending() and finished not in local_cloud.images.pending()
    assert not local_cloud.images.finish_now(finished)  # no longer pending: nothing to do
    assert not local_cloud.images.finish_now("ami-0000000000000000")


def test_a_bad_fail_kind_is_refused_naming_it(local_cloud: Any) -> None:
    with pytest.raises(ValueError, match="image_fail_kinds: unknown kind 'snapshot'; "
                                         "use create and/or copy"):
        local_cloud.faults.configure(image_fail_kinds=["snapshot"])
    with pytest.raises(ValueError, match="image_pending_seconds must not be negative"):
        local_cloud.image_pending_seconds = -1
