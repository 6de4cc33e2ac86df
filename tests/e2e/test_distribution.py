"""Issue 8 journeys: copies to other regions, sharing with accounts, cleanup everywhere."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from amiforge.core.tags import BUILD_ID
from amiforge.steps.finish import record_failure

pytestmark = pytest.mark.e2e
COPY_REGIONS = ("eu-west-1", "ap-southeast-2")
PARTNER = "111122223333"


def tags_of(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def test_two_regions_and_one_account(amiforge: Any, aws: Any, recipe_dir: Any) -> None:
    directory = recipe_dir("spread")
    # recipe_dir writes `image: {tags: ...}`; add the distribution fields under it.
    recipe = directory / "spread.yaml"
    recipe.write_text(recipe.read_text().replace(
        "image:\n  tags: {team: e2e}\n",
        "image:\n  tags: {team: e2e}\n  regions: [eu-west-1, ap-southeast-2]\n"
        f"  share_with: ['{PARTNER}']\n  kms_key_id: alias/amiforge\n"))
    assert amiforge("publish", "--no-detect", str(directory)).exit_code == 0
    result = amiforge("build", "--wait", "spread", output="json")
    assert result.exit_code == 0, result.output
    (build,) = json.loads(result.stdout)["builds"]
    record = amiforge("history", "spread", output="json")
    (latest,) = [b for b in json.loads(record.stdout)["builds"] if b["build_id"] == build["build_id"]]
    images = latest["images"]
    assert set(images) == {aws.resolved_region, *COPY_REGIONS}
    for region, image_id in images.items():
        ec2 = aws.client("ec2", region)
        (image,) = ec2.describe_images(ImageIds=[image_id])["Images"]
        tags = tags_of(image)
        assert tags["amiforge:recipe"] == "spread"
        assert tags["amiforge:build-id"] == build["build_id"]
        assert tags["team"] == "e2e"
        permissions = ec2.describe_image_attribute(
            ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]
        assert {"UserId": PARTNER} in permissions
        snapshots = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"]
                     if "Ebs" in m]
        assert snapshots
        for snapshot_id in snapshots:
            (snapshot,) = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
            assert snapshot["Encrypted"] is True
            assert tags_of(snapshot)["amiforge:build-id"] == build["build_id"]
            volume_permissions = ec2.describe_snapshot_attribute(
                SnapshotId=snapshot_id,
                Attribute="createVolumePermission")["CreateVolumePermissions"]
            assert {"UserId": PARTNER} in volume_permissions
        parameter = aws.client("ssm", region).get_parameter(Name="/amiforge/spread/latest")
        assert parameter["Parameter"]["Value"] == image_id
        assert parameter["Parameter"]["DataType"] == "aws:ec2:image"
    shown = amiforge("latest", "spread", "--in-region", "eu-west-1")
    assert shown.stdout.strip() == images["eu-west-1"]


def test_failure_path_removes_copies_in_every_region(aws: Any, stack: Any) -> None:
    """A build that failed after copying leaves no image or snapshot in any region."""
    home = aws.resolved_region
    ec2 = aws.client("ec2")
    build_id = f"orphan-{uuid.uuid4().hex[:20]}"  # an exact build id: the gate needs one
    tags = [{"Key": "amiforge:recipe", "Value": "orphan"}, {"Key": BUILD_ID, "Value": build_id}]
    base = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0]
    image_id = ec2.create_image(InstanceId=instance["InstanceId"], Name="orphan-home",
                                TagSpecifications=[{"ResourceType": "image", "Tags": tags},
                                                   {"ResourceType": "snapshot", "Tags": tags}]
                                )["ImageId"]
    copies = {region: aws.client("ec2", region).copy_image(
        SourceImageId=image_id, SourceRegion=home, Name=f"orphan-{region}", Encrypted=True,
        TagSpecifications=[{"ResourceType": "image", "Tags": tags},
                           {"ResourceType": "snapshot", "Tags": tags}])["ImageId"]
        for region in COPY_REGIONS}
    stack.catalog.start({"recipe": "orphan", "build_id": build_id, "build_key": build_id})
    state = {"build": {"recipe": "orphan", "build_id": build_id, "regions": list(COPY_REGIONS)},
             "error": {"Error": "BuildFailed", "Cause": "copy failed"}}
    result = record_failure(state, stack)
    assert set(result["deregistered"]) == {image_id, *copies.values()}
    for region in (home, *COPY_REGIONS):
        regional = aws.client("ec2", region)
        flt = [{"Name": f"tag:{BUILD_ID}", "Values": [build_id]}]
        assert regional.describe_images(Owners=["self"], Filters=flt)["Images"] == []
        assert regional.describe_snapshots(OwnerIds=["self"], Filters=flt)["Snapshots"] == []
    assert stack.catalog.get("orphan", build_id)["status"] == "FAILED"


def test_pruning_removes_an_image_and_its_snapshots_in_every_region(
        amiforge: Any, aws: Any, recipe_dir: Any) -> None:
    def publish_and_build(script: str) -> dict[str, str]:
        directory = recipe_dir("spread-prune", script)
        recipe = directory / "spread-prune.yaml"
        recipe.write_text(recipe.read_text().replace(
            "image:\n  tags: {team: e2e}\n",
            "image:\n  tags: {team: e2e}\n  regions: [eu-west-1, ap-southeast-2]\n"
            "retention: {keep: 1, max_age_days: null}\n"))
        assert amiforge("publish", "--no-detect", str(directory)).exit_code == 0
        result = amiforge("build", "--wait", "spread-prune", output="json")
        assert result.exit_code == 0, result.output
        (build,) = json.loads(result.stdout)["builds"]
        history = json.loads(amiforge("history", "spread-prune", output="json").stdout)["builds"]
        (record,) = [b for b in history if b["build_id"] == build["build_id"]]
        return {**record["images"], "build_id": build["build_id"]}

    old = publish_and_build("echo one\n")
    new = publish_and_build("echo two\n")  # a changed script: a new recipe hash, a new image
    result = amiforge("prune", "spread-prune", output="json")
    assert result.exit_code == 0, result.output
    actions = {d["image_id"]: d["action"] for d in json.loads(result.stdout)["decisions"]}
    home = aws.resolved_region
    assert actions == {old[home]: "prune", new[home]: "keep"}
    flt = [{"Name": f"tag:{BUILD_ID}", "Values": [old["build_id"]]}]
    for region in (home, *COPY_REGIONS):
        ec2 = aws.client("ec2", region)
        assert ec2.describe_images(Owners=["self"], Filters=flt)["Images"] == [], region
        assert ec2.describe_snapshots(OwnerIds=["self"], Filters=flt)["Snapshots"] == [], region
        (kept,) = ec2.describe_images(ImageIds=[new[region]])["Images"]
        assert kept["State"] == "available"
    history = json.loads(amiforge("history", "spread-prune", output="json").stdout)["builds"]
    assert {b["build_id"]: b["status"] for b in history} == {
        old["build_id"]: "PRUNED", new["build_id"]: "AVAILABLE"}
