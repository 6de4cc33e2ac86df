"""A resource's tags are read from its own entry, not by scanning every tag of the region
(localcloud/fills/ec2_tags.py): the same answers as moto's scan, at any number of tags."""

from __future__ import annotations

from typing import Any

import boto3
from moto.ec2.models import ec2_backends

BASE = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"


def test_tags_read_as_moto_reads_them_and_filters_still_match(local_cloud: Any) -> None:
    ec2 = boto3.client("ec2")
    volumes = [ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
               for _ in range(3)]
    snapshots = [ec2.create_snapshot(VolumeId=v)["SnapshotId"] for v in volumes]
    ec2.create_tags(Resources=snapshots[:2], Tags=[{"Key": "team", "Value": "tags-fill"}])
    ec2.create_tags(Resources=[snapshots[0]], Tags=[{"Key": "kind", "Value": "first"}])
    backend = ec2_backends["123456789012"]["us-east-1"]
    for snapshot_id in snapshots:
        snapshot = backend.snapshots[snapshot_id]
        scanned = backend.describe_tags(filters={"resource-id": [snapshot_id]})
        assert snapshot.get_tags() == scanned
    assert backend.snapshots[snapshots[0]].get_tags() == [
        {"resource_id": snapshots[0], "key": "team", "value": "tags-fill",
         "resource_type": "snapshot"},
        {"resource_id": snapshots[0], "key": "kind", "value": "first",
         "resource_type": "snapshot"}]
    assert backend.snapshots[snapshots[2]].get_tags() == []
    assert snapshots[2] not in backend.tags  # reading added no empty entry

    found = ec2.describe_snapshots(
        Filters=[{"Name": "tag:team", "Values": ["tags-fill"]}])["Snapshots"]
    assert sorted(s["SnapshotId"] for s in found) == sorted(snapshots[:2])
    (first,) = ec2.describe_snapshots(SnapshotIds=[snapshots[0]])["Snapshots"]
    assert {t["Key"]: t["Value"] for t in first["Tags"]} == {"team": "tags-fill",
                                                            "kind": "first"}
    assert ec2.describe_snapshots(Filters=[{"Name": "tag-key", "Values": ["kind"]}],
                                  SnapshotIds=snapshots)["Snapshots"][0][
        "SnapshotId"] == snapshots[0]
