"""aws/ec2.py on the local cloud's EC2: a builder launched as the design says (IMDSv2,
encrypted EBS, stops on shutdown, tagged at creation), images made, found by tag and
copied; missing things are answers, not errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from amiforge.aws import ec2 as ec2_api
from amiforge.aws.session import AwsContext
from amiforge.errors import AwsCallFailed


def _image(aws: AwsContext, name: str) -> str:
    return str(aws.client("ec2").register_image(Name=name, RootDeviceName="/dev/xvda")["ImageId"])


def test_a_builder_is_launched_locked_down_and_tagged(aws: AwsContext,
                                                     unique: Callable[[str], str]) -> None:
    ec2 = aws.client("ec2")
    tag = unique("t")
    request = ec2_api.LaunchRequest(
        image_id=_image(aws, tag), root_device_name="/dev/xvda",
        instance_types=("t3.small",), user_data="#!/bin/bash\ntrue\n",
        tags={"amiforge:test": tag}, client_token=tag, volume_size_gb=12)
    instance_id, instance_type, capacity_errors = ec2_api.run_builder(ec2, request)
    assert (instance_type, capacity_errors) == ("t3.small", [])
    instance = ec2_api.describe_instance(ec2, instance_id)
    assert instance is not None
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert "KeyName" not in instance
    assert ec2_api.tags_of(instance)["amiforge:test"] == tag
    shutdown = ec2.describe_instance_attribute(
        InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior")
    assert shutdown["InstanceInitiatedShutdownBehavior"]["Value"] == "stop"
    found = ec2_api.instances_tagged(ec2, {"amiforge:test": tag})
    assert [i["InstanceId"] for i in found] == [instance_id]
    # One of the two does not exist: the other is still terminated.
    gone = "i-0123456789abcdef0"
    assert ec2_api.terminate(ec2, [instance_id, gone]) == sorted([instance_id, gone])
    state = ec2_api.describe_instance(ec2, instance_id)
    assert state is not None and state["State"]["Name"] in ("shutting-down", "terminated")
    assert ec2_api.terminate(ec2, []) == []


def test_images_are_made_found_by_tag_and_copied(aws: AwsContext,
                                                unique: Callable[[str], str]) -> None:
    ec2 = aws.client("ec2")
    tag = unique("img")
    reservation = ec2.run_instances(ImageId=_image(aws, tag), MinCount=1, MaxCount=1)
    instance_id = reservation["Instances"][0]["InstanceId"]
    image_id = ec2_api.create_image(ec2, instance_id=instance_id, name=tag,
                                    description="test", tags={"amiforge:test": tag})
    assert [i["ImageId"] for i in ec2_api.images_tagged(ec2, "amiforge:test", tag)] == [image_id]
    image = ec2_api.describe_image(ec2, image_id)
    assert image is not None and image["Name"] == tag
    assert isinstance(ec2_api.snapshot_ids(image), list)
    copy = ec2_api.copy_image(aws.client("ec2", "us-west-2"), source_image_id=image_id,
                              source_region=aws.resolved_region, name=tag + "-copy",
                              description="copy", kms_key_id=None, client_token=tag,
                              tags={"amiforge:test": tag})
    assert copy.startswith("ami-") and copy != image_id
    ec2.terminate_instances(InstanceIds=[instance_id])


def test_missing_things_are_answers(aws: AwsContext) -> None:
    ec2 = aws.client("ec2")
    assert ec2_api.describe_image(ec2, "ami-0123456789abcdef0") is None
    assert ec2_api.describe_instance(ec2, "i-0123456789abcdef0") is None


def test_a_malformed_id_is_an_error_naming_the_operation(aws: AwsContext) -> None:
    with pytest.raises(AwsCallFailed) as caught:
        ec2_api.copy_image(aws.client("ec2"), source_image_id="not-an-ami",
                           source_region="us-east-1", name="bad-copy", description="x",
                           kms_key_id=None, tags={}, client_token="x")
    assert caught.value.operation == "CopyImage"


def test_newest_images_answers_each_pattern_as_alone_in_fewer_calls(
        aws: AwsContext, local_cloud: object, unique: Callable[[str], str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime, timedelta

    from tests.helpers import CallCounter

    ec2 = aws.client("ec2")
    tag, now = unique("v"), datetime.now(UTC)

    def release(name: str, days: int) -> str:
        return str(local_cloud.release_base(  # type: ignore[attr-defined]
            f"{tag}-{name}", creation_date=now - timedelta(days=days)))

    old_web, new_web, db = release("web-1", 2), release("web-2", 1), release("db-1", 3)
    patterns = [f"{tag}-web-*", f"{tag}-db-*", f"{tag}-*-1", f"{tag}-none-*", f"{tag}-web-*"]
    alone = {}
    for pattern in patterns:  # the answer of each pattern asked alone, by hand
        images = ec2.describe_images(Owners=["amazon"], Filters=[
            {"Name": "name", "Values": [pattern]},
            {"Name": "state", "Values": ["available"]}])["Images"]
        alone[pattern] = sorted(i["ImageId"] for i in images)
    assert alone[f"{tag}-*-1"] == sorted([old_web, db])

    monkeypatch.setattr(ec2_api, "NAMES_PER_CALL", 2)
    with CallCounter(ec2) as counter:
        newest = ec2_api.newest_images(ec2, owners=["amazon"], names=patterns,
                                       filters=[{"Name": "state", "Values": ["available"]}])
    assert counter.calls == {"DescribeImages": 2}  # four distinct patterns, two a call
    assert {p: (i or {}).get("ImageId") for p, i in newest.items()} == {
        f"{tag}-web-*": new_web, f"{tag}-db-*": db, f"{tag}-*-1": old_web, f"{tag}-none-*": None}
    for pattern, image in newest.items():  # the newest of what the pattern alone finds
        assert (image or {}).get("ImageId") == (max(
            alone[pattern], key=lambda i: ec2.describe_images(ImageIds=[i])["Images"][0][
                "CreationDate"]) if alone[pattern] else None)


def test_newest_images_refuses_a_name_among_the_other_filters(aws: AwsContext) -> None:
    with pytest.raises(ValueError, match="name patterns go in names="):
        ec2_api.newest_images(aws.client("ec2"), owners=["amazon"], names=["x-*"],
                              filters=[{"Name": "name", "Values": ["y-*"]}])


def test_security_group_tags_leave_out_groups_that_do_not_exist(
        aws: AwsContext, unique: Callable[[str], str]) -> None:
    ec2 = aws.client("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName=unique("sg"), Description="t", VpcId=vpc,
                                      TagSpecifications=[{
                                          "ResourceType": "security-group",
                                          "Tags": [{"Key": "amiforge:stack", "Value": "s"}]}]
                                      )["GroupId"]
    assert ec2_api.security_group_tags(ec2, [group, "sg-0123456789abcdef0"]) == {
        group: {"amiforge:stack": "s"}}
