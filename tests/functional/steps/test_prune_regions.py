"""Prune across regions, on the local cloud: snapshots an interrupted run left behind in a
copy region are deleted on the next run; a region whose image usage cannot be known (a
launch template names an SSM parameter amiforge may not read) has nothing pruned.

The catalog and the recipe store are small in-memory fakes; EC2, SSM and Auto Scaling are
the local cloud's.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from amiforge.aws.session import AwsContext
from amiforge.core.recipes import load_recipes
from amiforge.core.tags import BUILD_ID
from amiforge.steps.env import StepEnv
from amiforge.steps.prune import prune

HOME, COPY = "us-east-1", "eu-west-1"


class FakeStore:
    def __init__(self, documents: list[dict[str, Any]]) -> None:
        self.documents = documents

    def all_current(self) -> list[dict[str, Any]]:
        return [{"name": doc["name"], "document": doc} for doc in self.documents]


class FakeCatalog:
    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = {(r["recipe"], r["build_id"]): dict(r) for r in records}

    def history(self, recipe: str) -> list[dict[str, Any]]:
        return sorted((dict(r) for (name, _), r in self.records.items() if name == recipe),
                      key=lambda r: r["created_at"], reverse=True)

    def get(self, recipe: str, build_id: str) -> dict[str, Any] | None:
        record = self.records.get((recipe, build_id))
        return dict(record) if record else None

    def update(self, recipe: str, build_id: str, *, only_if_status: str | None = None,
               remove: tuple[str, ...] = (), **fields: Any) -> bool:
        record = self.records[(recipe, build_id)]
        if only_if_status and record.get("status") != only_if_status:
            return False
        record.update({k: v for k, v in fields.items() if v is not None})
        for name in remove:
            record.pop(name, None)
        return True


class UnreadableParameters:
    """The region's SSM client, but GetParameters of ``denied`` names is AccessDenied."""

    def __init__(self, ssm: Any, denied: set[str]) -> None:
        self._ssm = ssm
        self._denied = denied

    def get_parameters(self, *, Names: list[str], **kwargs: Any) -> Any:  # noqa: N803
        if self._denied & set(Names):
            raise ClientError({"Error": {"Code": "AccessDeniedException",
                                         "Message": "not authorized to perform "
                                                    "ssm:GetParameters"}}, "GetParameters")
        return self._ssm.get_parameters(Names=Names, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ssm, name)


def build_id(recipe: str) -> str:
    """A build id of the exact format (the deletion gate refuses any other)."""
    return f"{recipe}-{uuid.uuid4().hex[:20]}"


def recipe_document(tmp_path: Path, name: str) -> dict[str, Any]:
    (tmp_path / "scripts").mkdir(exist_ok=True)
    (tmp_path / "scripts" / f"{name}.sh").write_text("#!/bin/bash\necho hi\n")
    (tmp_path / f"{name}.yaml").write_text(
        f"name: {name}\ndescription: prune regions\n"
        "base:\n  ssm_parameter: /aws/service/ami-amazon-linux-latest/"
        "al2023-ami-kernel-6.1-x86_64\n"
        f"build:\n  platform: linux\n  user_data: scripts/{name}.sh\n"
        "  instance_types: [t3.small]\n"
        "image:\n  regions: [eu-west-1]\n"
        "retention: {keep: 1, max_age_days: 5}\n")
    (recipe,) = load_recipes(tmp_path)
    return recipe.to_document()


def record(recipe: str, build_id: str, days_old: int, images: dict[str, str],
           snapshot_ids: list[str] | None = None) -> dict[str, Any]:
    created = datetime.now(UTC) - timedelta(days=days_old)
    return {"recipe": recipe, "build_id": build_id, "status": "AVAILABLE",
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "image_id": images[HOME], "images": images, "snapshot_ids": snapshot_ids or [],
            "available_recipe": recipe}


@pytest.fixture()
def aws(local_cloud: Any) -> AwsContext:
    return AwsContext(region=HOME, endpoint_url=local_cloud.endpoint)


def make_env(aws: AwsContext, documents: list[dict[str, Any]],
             records: list[dict[str, Any]]) -> StepEnv:
    env = StepEnv(catalog_table="catalog", recipes_table="recipes", aws=aws)
    env.__dict__["store"] = FakeStore(documents)      # cached_property: set it directly
    env.__dict__["catalog"] = FakeCatalog(records)
    return env


def tag(ec2: Any, resources: list[str], recipe: str, build_id: str) -> None:
    ec2.create_tags(Resources=resources, Tags=[{"Key": BUILD_ID, "Value": build_id},
                                               {"Key": "amiforge:recipe", "Value": recipe}])


def image_of(ec2: Any, recipe: str, build_id: str, *, copy_of: str | None = None
             ) -> tuple[str, str]:
    """(image id, its snapshot id), both tagged with the build id."""
    if copy_of:
        image_id = ec2.copy_image(SourceImageId=copy_of, SourceRegion=HOME,
                                  Name=f"{build_id}-copy")["ImageId"]
    else:
        image_id = ec2.register_image(Name=build_id, RootDeviceName="/dev/xvda")["ImageId"]
    (image,) = ec2.describe_images(ImageIds=[image_id])["Images"]
    (snapshot_id,) = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"]
                      if m.get("Ebs", {}).get("SnapshotId")]
    tag(ec2, [image_id, snapshot_id], recipe, build_id)
    return image_id, snapshot_id


def snapshot_exists(ec2: Any, snapshot_id: str) -> bool:
    try:
        return bool(ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"])
    except ClientError as err:
        assert err.response["Error"]["Code"] == "InvalidSnapshot.NotFound"
        return False


def image_exists(ec2: Any, image_id: str) -> bool:
    try:
        images = ec2.describe_images(ImageIds=[image_id])["Images"]
    except ClientError:
        return False
    return any(i.get("State") != "deregistered" for i in images)


def test_a_rerun_deletes_copy_region_snapshots_an_interrupted_prune_left(
        aws: AwsContext, tmp_path: Path) -> None:
    token = uuid.uuid4().hex[:8]
    recipe = f"leak-{token}"
    home, copy = aws.client("ec2", HOME), aws.client("ec2", COPY)
    old, new = build_id(recipe), build_id(recipe)
    old_home, old_home_snap = image_of(home, recipe, old)
    old_copy, old_copy_snap = image_of(copy, recipe, old, copy_of=old_home)
    new_home, _ = image_of(home, recipe, new)
    new_copy, new_copy_snap = image_of(copy, recipe, new, copy_of=new_home)
    # An image of the old build the catalog does not know of: its snapshot is in use.
    stray, stray_snap = image_of(copy, recipe, old, copy_of=old_home)
    # The interrupted run: the copy was deregistered, its snapshot never deleted.
    copy.deregister_image(ImageId=old_copy)
    assert snapshot_exists(copy, old_copy_snap)

    env = make_env(aws, [recipe_document(tmp_path, recipe)], [
        record(recipe, old, 10, {HOME: old_home, COPY: old_copy}, [old_home_snap]),
        record(recipe, new, 0, {HOME: new_home, COPY: new_copy})])
    report = prune({"recipes": [recipe]}, env)

    outcomes = {d["build_id"]: (d["action"], d["outcome"]) for d in report["decisions"]}
    assert outcomes == {old: ("prune", "pruned"), new: ("keep", "kept")}
    assert report["errors"] == 0
    assert not snapshot_exists(copy, old_copy_snap)     # the leak is gone
    assert not image_exists(home, old_home) and not snapshot_exists(home, old_home_snap)
    # Another build's snapshots, and a snapshot a registered image still uses, stay.
    assert snapshot_exists(copy, new_copy_snap) and image_exists(copy, new_copy)
    assert image_exists(copy, stray) and snapshot_exists(copy, stray_snap)
    assert env.catalog.get(recipe, old)["status"] == "PRUNED"


def test_an_unreadable_launch_template_parameter_keeps_that_regions_images(
        aws: AwsContext, tmp_path: Path) -> None:
    token = uuid.uuid4().hex[:8]
    recipe = f"unknown-{token}"
    parameter = f"/aws/service/denied-{token}/image_id"
    home, copy = aws.client("ec2", HOME), aws.client("ec2", COPY)
    both, home_only, newest = build_id(recipe), build_id(recipe), build_id(recipe)
    both_home, _ = image_of(home, recipe, both)
    both_copy, _ = image_of(copy, recipe, both, copy_of=both_home)
    home_only_image, _ = image_of(home, recipe, home_only)
    newest_image, _ = image_of(home, recipe, newest)
    template = copy.create_launch_template(
        LaunchTemplateName=f"lt-{token}",
        LaunchTemplateData={"ImageId": f"resolve:ssm:{parameter}"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    # A parameter that does not exist names no image: it blocks nothing.
    missing = home.create_launch_template(
        LaunchTemplateName=f"lt-missing-{token}",
        LaunchTemplateData={"ImageId": f"resolve:ssm:/no-such-{token}/image_id"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    try:
        aws._clients[("ssm", COPY)] = UnreadableParameters(aws.client("ssm", COPY),
                                                           {parameter})
        env = make_env(aws, [recipe_document(tmp_path, recipe)], [
            record(recipe, both, 20, {HOME: both_home, COPY: both_copy}),
            record(recipe, home_only, 10, {HOME: home_only_image}),
            record(recipe, newest, 0, {HOME: newest_image})])
        report = prune({"recipes": [recipe]}, env)
    finally:
        copy.delete_launch_template(LaunchTemplateId=template)
        home.delete_launch_template(LaunchTemplateId=missing)

    by_build = {d["build_id"]: d for d in report["decisions"]}
    kept = by_build[both]
    assert (kept["action"], kept["outcome"]) == ("keep", "kept")
    assert kept["reason"].startswith(
        f"could not read SSM parameter {parameter} used by launch template {template} "
        f"in {COPY}: ")
    assert "AccessDenied" in kept["reason"] and kept["reason"].endswith("; kept")
    assert image_exists(home, both_home) and image_exists(copy, both_copy)
    # Only that region is unknown: a build with no copy there is pruned as planned.
    assert (by_build[home_only]["action"], by_build[home_only]["outcome"]) == ("prune",
                                                                               "pruned")
    assert not image_exists(home, home_only_image)
    assert report["errors"] == 0 and report["pruned"] == 1
