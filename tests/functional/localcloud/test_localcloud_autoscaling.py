"""The local cloud's instance refresh sends AWS's refresh events to the default bus: a
rule on ``aws.autoscaling`` delivers "Started" and "Succeeded" (or "Rollback Succeeded"
for the ``fail`` directive), naming the refresh and the group."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest

from amiforge.localcloud.fills.autoscaling import directive
from amiforge.localcloud.testing import receive_all


def group(region: str, tag: str | None) -> tuple[str, str]:
    ec2, autoscaling = boto3.client("ec2"), boto3.client("autoscaling")
    image = ec2.register_image(Name=f"ev-{uuid.uuid4().hex[:8]}",
                               RootDeviceName="/dev/xvda")["ImageId"]
    template = ec2.create_launch_template(
        LaunchTemplateName=f"ev-{uuid.uuid4().hex[:8]}", LaunchTemplateData={"ImageId": image}
    )["LaunchTemplate"]["LaunchTemplateId"]
    name = f"ev-{uuid.uuid4().hex[:8]}"
    tags = ([{"Key": "amiforge-sim:refresh", "Value": tag, "PropagateAtLaunch": False}]
            if tag else [])
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name, MinSize=1, MaxSize=1, DesiredCapacity=1, Tags=tags,
        AvailabilityZones=[f"{region}a"], LaunchTemplate={"LaunchTemplateId": template})
    return name, template


@pytest.mark.parametrize("tag, last", [(None, "EC2 Auto Scaling Instance Refresh Succeeded"),
                                       ("fail", "EC2 Auto Scaling Instance Refresh "
                                                "Rollback Succeeded")])
def test_refresh_events_reach_the_default_bus(local_cloud: Any, tag: str | None,
                                              last: str) -> None:
    events, sqs = boto3.client("events"), boto3.client("sqs")
    name, template = group(local_cloud.region, tag)
    queue = sqs.create_queue(QueueName=f"ev-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    rule = f"ev-{uuid.uuid4().hex[:8]}"
    events.put_rule(Name=rule, EventPattern=json.dumps({
        "source": ["aws.autoscaling"], "detail": {"AutoScalingGroupName": [name]}}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn}])
    refresh = boto3.client("autoscaling").start_instance_refresh(
        AutoScalingGroupName=name, Preferences={"AutoRollback": True},
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": template,
                                                 "Version": "1"}})["InstanceRefreshId"]
    got = receive_all(sqs, queue, 2, timeout=15)
    assert [e["detail-type"] for e in got] == ["EC2 Auto Scaling Instance Refresh Started",
                                               last]
    assert {e["detail"]["InstanceRefreshId"] for e in got} == {refresh}
    assert {e["source"] for e in got} == {"aws.autoscaling"}


def test_the_directive_is_read_from_the_group_tag() -> None:
    class Group:
        def __init__(self, value: str) -> None:
            self.tags = [{"key": "amiforge-sim:refresh", "value": value}]

    assert directive(Group("fail")) == (True, 0.5)
    assert directive(Group("slow 3")) == (False, 3.0)
    assert directive(Group("fail slow 2")) == (True, 2.0)
    assert directive(Group("slow x")) == (False, 0.5)
