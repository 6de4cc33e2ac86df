"""aws/autoscaling.py on the local cloud, whose instance refresh is amiforge's fill
(localcloud/fills/autoscaling.py): a refresh replaces the group's instances with ones of
the version it names; a second start finds the running one; the fault directive makes it
roll back; a rollback on request ends it before anything is replaced."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from amiforge.aws import autoscaling as asg_api
from amiforge.aws.session import AwsContext
from amiforge.core.rollout import RefreshTarget, refresh_request
from amiforge.errors import AwsCallFailed


def image(ec2: Any) -> str:
    return ec2.register_image(Name=f"asg-{uuid.uuid4().hex[:8]}",
                              RootDeviceName="/dev/xvda")["ImageId"]


def group_with_template(aws: AwsContext, directive: str | None = None
                        ) -> tuple[str, str, str, str]:
    ec2, autoscaling = aws.client("ec2"), aws.client("autoscaling")
    old, new = image(ec2), image(ec2)
    template = ec2.create_launch_template(
        LaunchTemplateName=f"lt-{uuid.uuid4().hex[:8]}",
        LaunchTemplateData={"ImageId": old, "InstanceType": "t3.micro"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateId=template,
                                       LaunchTemplateData={"ImageId": new})
    name = f"asg-{uuid.uuid4().hex[:8]}"
    tags = [{"Key": "amiforge:rollout", "Value": "st", "PropagateAtLaunch": False}]
    if directive:
        tags.append({"Key": "amiforge-sim:refresh", "Value": directive,
                     "PropagateAtLaunch": False})
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name, MinSize=2, MaxSize=2, DesiredCapacity=2,
        AvailabilityZones=[f"{aws.region}a"], Tags=tags,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Default"})
    return name, template, old, new


def images_of(aws: AwsContext, group: str) -> set[str]:
    found = aws.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]
    ids = [i["InstanceId"] for i in found]
    reservations = aws.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return {i["ImageId"] for r in reservations for i in r["Instances"]}


def wait_for(aws: AwsContext, group: str, refresh_id: str,
             done: Callable[[str], bool]) -> asg_api.Refresh:
    for _ in range(200):
        (found,) = asg_api.refreshes(aws.client("autoscaling"), group, refresh_id)
        if done(found.status):
            return found
        time.sleep(0.05)
    raise AssertionError(f"refresh {refresh_id} never ended: {found}")


def test_a_refresh_replaces_the_instances_with_the_version_it_names(aws: AwsContext) -> None:
    name, template, old, new = group_with_template(aws)
    autoscaling = aws.client("autoscaling")
    group = asg_api.group(autoscaling, name)
    assert group is not None
    assert (group.template_id, group.template_version) == (template, "$Default")
    assert group.tags["amiforge:rollout"] == "st"
    assert images_of(aws, name) == {old}
    request = refresh_request(RefreshTarget(name), template_id=template, version=2)
    refresh_id = asg_api.start_refresh(autoscaling, request)
    # Started twice (a retried step): the running refresh, not a second one.
    assert asg_api.start_refresh(autoscaling, request) == refresh_id
    ended = wait_for(aws, name, refresh_id, lambda s: s not in {"Pending", "InProgress"})
    assert (ended.status, ended.percentage) == ("Successful", 100)
    assert images_of(aws, name) == {new}
    after = asg_api.group(autoscaling, name)
    assert after is not None and after.template_version == "2"
    assert [r.refresh_id for r in asg_api.refreshes(autoscaling, name)] == [refresh_id]


def test_the_fail_directive_rolls_the_refresh_back(aws: AwsContext) -> None:
    name, template, old, _new = group_with_template(aws, "fail")
    autoscaling = aws.client("autoscaling")
    refresh_id = asg_api.start_refresh(
        autoscaling, refresh_request(RefreshTarget(name), template_id=template, version=2))
    ended = wait_for(aws, name, refresh_id, lambda s: s not in {"Pending", "InProgress"})
    assert ended.status == "RollbackSuccessful"
    assert "failed their health checks" in ended.reason
    assert images_of(aws, name) == {old}


def test_a_rollback_on_request_ends_the_refresh_before_it_replaces_anything(
        aws: AwsContext) -> None:
    name, template, old, _new = group_with_template(aws, "slow 30")
    autoscaling = aws.client("autoscaling")
    refresh_id = asg_api.start_refresh(
        autoscaling, refresh_request(RefreshTarget(name), template_id=template, version=2))
    asg_api.roll_back(autoscaling, name)
    (ended,) = asg_api.refreshes(autoscaling, name, refresh_id)
    assert ended.status == "RollbackSuccessful" and images_of(aws, name) == {old}
    asg_api.roll_back(autoscaling, name)  # nothing runs: nothing to do, no error


def test_an_unknown_group_is_none_and_its_refresh_an_error(aws: AwsContext) -> None:
    autoscaling = aws.client("autoscaling")
    unknown = f"nope-{uuid.uuid4().hex[:8]}"
    assert asg_api.group(autoscaling, unknown) is None
    with pytest.raises(AwsCallFailed) as info:
        asg_api.start_refresh(autoscaling, {"AutoScalingGroupName": unknown})
    assert info.value.code == "ValidationError"
