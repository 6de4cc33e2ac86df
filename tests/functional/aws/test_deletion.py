"""aws/deletion.py on the local cloud: nothing is removed without the gate's delete
verdict for exactly that resource; gone is fine, a snapshot in use is refused."""

from __future__ import annotations

import uuid

import pytest

from amiforge.aws import deletion
from amiforge.aws.session import AwsContext
from amiforge.core.deletion import DELETE, KEEP, Verdict


def _image_with_snapshot(aws: AwsContext) -> tuple[str, str]:
    """An image made from an instance, as a build makes one, and its snapshot."""
    ec2 = aws.client("ec2")
    base = ec2.register_image(Name=f"b-{uuid.uuid4().hex[:8]}", RootDeviceName="/dev/xvda")
    instance = ec2.run_instances(ImageId=base["ImageId"], MinCount=1,
                                 MaxCount=1)["Instances"][0]["InstanceId"]
    image = ec2.create_image(InstanceId=instance, Name=f"d-{uuid.uuid4().hex[:8]}")["ImageId"]
    ec2.terminate_instances(InstanceIds=[instance])
    described = ec2.describe_images(ImageIds=[image])["Images"][0]
    snapshot = next(m["Ebs"]["SnapshotId"] for m in described["BlockDeviceMappings"]
                    if "Ebs" in m)
    return image, snapshot


def test_only_the_approved_resource_is_removed(aws: AwsContext) -> None:
    ec2 = aws.client("ec2")
    image, snapshot = _image_with_snapshot(aws)
    with pytest.raises(deletion.NotApproved, match="kept for a reason"):
        deletion.deregister_approved(ec2, image, Verdict(KEEP, "kept for a reason", image))
    with pytest.raises(deletion.NotApproved):  # a delete verdict for another image
        deletion.deregister_approved(ec2, image, Verdict(DELETE, "old", "ami-other"))
    assert ec2.describe_images(ImageIds=[image])["Images"]
    deletion.deregister_approved(ec2, image, Verdict(DELETE, "old", image))
    assert ec2.describe_images(Owners=["self"], Filters=[
        {"Name": "image-id", "Values": [image]}])["Images"] == []
    deletion.deregister_approved(ec2, image, Verdict(DELETE, "old", image))  # gone: fine
    assert deletion.delete_snapshot_approved(ec2, snapshot, Verdict(DELETE, "old", snapshot))
    assert deletion.delete_snapshot_approved(ec2, snapshot, Verdict(DELETE, "old", snapshot))


def test_a_snapshot_an_image_still_uses_is_not_deleted(aws: AwsContext) -> None:
    ec2 = aws.client("ec2")
    _image, snapshot = _image_with_snapshot(aws)
    assert deletion.delete_snapshot_approved(
        ec2, snapshot, Verdict(DELETE, "old", snapshot)) is False
    assert ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"]
