"""aws/ec2_lifecycle.py on the local cloud: what a build left, found by exact tags only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from amiforge.aws import ec2_lifecycle
from amiforge.aws.session import AwsContext
from amiforge.core.tags import BUILD_ID
from amiforge.errors import InvalidInput


def test_a_builds_images_and_snapshots_are_found_by_its_exact_id(aws: AwsContext) -> None:
    ec2 = aws.client("ec2")
    build_id = f"web-{uuid.uuid4().hex[:20]}"
    other = f"web-{uuid.uuid4().hex[:20]}"
    volume = ec2.create_volume(AvailabilityZone=f"{aws.resolved_region}a", Size=1)["VolumeId"]
    images = {}
    for build in (build_id, other):
        snapshot = ec2.create_snapshot(VolumeId=volume, TagSpecifications=[{
            "ResourceType": "snapshot", "Tags": [{"Key": BUILD_ID, "Value": build}]}])
        images[build] = ec2.register_image(
            Name=build, RootDeviceName="/dev/xvda", BlockDeviceMappings=[{
                "DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot["SnapshotId"]}}],
        )["ImageId"]
        ec2.create_tags(Resources=[images[build]], Tags=[{"Key": BUILD_ID, "Value": build}])
    assert [i["ImageId"] for i in ec2_lifecycle.build_images(ec2, build_id)] == [images[build_id]]
    snapshots = ec2_lifecycle.build_snapshots(ec2, build_id)
    assert len(snapshots) == 1
    every = {i["ImageId"] for i in ec2_lifecycle.build_images(ec2)}
    assert set(images.values()) <= every
    later = datetime.now(UTC) + timedelta(days=30)
    ec2_lifecycle.enable_deprecation(ec2, images[build_id], later)
    described = ec2.describe_images(ImageIds=[images[build_id]])["Images"][0]
    assert described.get("DeprecationTime", "").startswith(later.strftime("%Y-%m-%d"))


@pytest.mark.parametrize("pattern", ["web-*", "web-?", "*", "web-0123"])
def test_a_pattern_never_becomes_a_filter(aws: AwsContext, pattern: str) -> None:
    with pytest.raises(InvalidInput, match="exact build-id format"):
        ec2_lifecycle.build_images(aws.client("ec2"), pattern)


def test_instances_using_an_image_skip_terminated_ones(aws: AwsContext) -> None:
    ec2 = aws.client("ec2")
    image = ec2.register_image(Name=f"u-{uuid.uuid4().hex[:8]}",
                               RootDeviceName="/dev/xvda")["ImageId"]
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=2,
                                                        MaxCount=2)["Instances"]]
    ec2.terminate_instances(InstanceIds=[ids[0]])
    using = ec2_lifecycle.instances_using(ec2, [image])
    assert [i["InstanceId"] for i in using] == [ids[1]]
    ec2.terminate_instances(InstanceIds=[ids[1]])
