"""Prune on the local cloud (catalog and recipe-store tables, EC2, SSM, Auto Scaling):
what retention chooses goes, in every region, with its snapshots; what is in use or
named by ``latest`` stays, with the reason; snapshots an interrupted run left behind in
a copy region are deleted on the next run; a region whose image usage cannot be known
(a launch template names an SSM parameter amiforge may not read) has nothing pruned;
a dry run reports exactly what the run then does, and changes nothing.

Was test_prune_regions.py, whose FakeStore and FakeCatalog are now the real tables
(recipes published with RecipeStore.publish, records seeded with Catalog.put_many). The
one stand-in left, UnreadableParameters, makes one SSM read fail as IAM would refuse it
(the local cloud enforces no IAM).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from tests.helpers import build_id_of, iso, publish_recipe, seed, stack_resources, write_recipe

from amiforge.aws.session import AwsContext
from amiforge.core.tags import BUILD_ID
from amiforge.steps.env import StepEnv
from amiforge.steps.prune import prune

# Home and copy regions of the module's own: usage is read from every instance, launch
# template and parameter of a region, and the other modules' are not its business.
HOME, COPY = "ap-southeast-1", "ap-southeast-2"


@pytest.fixture(scope="module")
def aws(local_cloud: Any) -> AwsContext:
    return AwsContext(region=HOME, endpoint_url=local_cloud.endpoint)


@pytest.fixture(scope="module")
def stack(aws: AwsContext) -> StepEnv:
    return stack_resources(aws)


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


build_id = build_id_of


def publish_retention(env: StepEnv, tmp_path: Path, name: str) -> None:
    """Publish recipe ``name``: one image kept, none older than 5 days, copied to COPY."""
    publish_recipe(env, write_recipe(tmp_path, name, image=f"regions: [{COPY}]\n",
                                     extra="retention: {keep: 1, max_age_days: 5}\n"))


def record(recipe: str, build_id: str, days_old: int, images: dict[str, str],
           snapshot_ids: list[str] | None = None) -> dict[str, Any]:
    return {"recipe": recipe, "build_id": build_id, "status": "AVAILABLE",
            "created_at": iso(days_old), "image_id": images[HOME], "images": images,
            "snapshot_ids": snapshot_ids or []}


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
        aws: AwsContext, env: StepEnv, tmp_path: Path) -> None:
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

    publish_retention(env, tmp_path, recipe)
    seed(env, record(recipe, old, 10, {HOME: old_home, COPY: old_copy}, [old_home_snap]),
         record(recipe, new, 0, {HOME: new_home, COPY: new_copy}))
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
        local_cloud: Any, stack: StepEnv, tmp_path: Path) -> None:
    # Clients of its own: one of them is wrapped.
    aws = AwsContext(region=HOME, endpoint_url=local_cloud.endpoint)
    env = dataclasses.replace(stack, aws=aws)
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
        publish_retention(env, tmp_path, recipe)
        seed(env, record(recipe, both, 20, {HOME: both_home, COPY: both_copy}),
             record(recipe, home_only, 10, {HOME: home_only_image}),
             record(recipe, newest, 0, {HOME: newest_image}))
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


def test_what_is_in_use_or_named_by_latest_stays_and_a_dry_run_changes_nothing(
        aws: AwsContext, env: StepEnv, tmp_path: Path) -> None:
    recipe = f"use-{uuid.uuid4().hex[:8]}"
    home = aws.client("ec2", HOME)
    builds = [build_id(recipe) for _ in range(4)]
    images = [image_of(home, recipe, b)[0] for b in builds]
    used, named = images[:2]
    user = home.run_instances(ImageId=used, MinCount=1, MaxCount=1,
                              InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    # latest names an old image (a rollback by hand): the gate keeps it.
    aws.client("ssm").put_parameter(Name=f"/amiforge/{recipe}/latest", Value=named,
                                    Type="String", DataType="aws:ec2:image")
    publish_retention(env, tmp_path, recipe)
    seed(env, *(record(recipe, b, days, {HOME: image})
                for b, days, image in zip(builds, (30, 20, 10, 0), images, strict=True)))

    planned = prune({"recipes": [recipe], "dry_run": True}, env)
    assert all(image_exists(home, i) for i in images)
    done = prune({"recipes": [recipe]}, env)

    plan = {d["build_id"]: (d["action"], d["reason"]) for d in planned["decisions"]}
    outcome = {d["build_id"]: d["outcome"] for d in done["decisions"]}
    assert plan == {d["build_id"]: (d["action"], d["reason"]) for d in done["decisions"]}
    assert plan[builds[0]][0] == "keep" and f"{user}" in plan[builds[0]][1]
    assert plan[builds[1]][0] == "keep" and f"/amiforge/{recipe}/latest" in plan[builds[1]][1]
    assert plan[builds[2]][0] == "prune" and plan[builds[3]][0] == "keep"
    assert outcome == {builds[0]: "kept", builds[1]: "kept", builds[2]: "pruned",
                       builds[3]: "kept"}
    assert [image_exists(home, i) for i in images] == [True, True, False, True]
    assert env.catalog.get(recipe, builds[2])["status"] == "PRUNED"
    assert env.catalog.get(recipe, builds[0])["status"] == "AVAILABLE"
    assert (planned["pruned"], done["pruned"], done["errors"]) == (0, 1, 0)


def test_an_unpublished_recipe_is_skipped_not_guessed(env: StepEnv) -> None:
    report = prune({"recipes": ["never-published-x"]}, env)
    assert report["decisions"] == []
    assert report["skipped"] == [{"recipe": "never-published-x", "reason": "not published"}]


def pruned_with_calls(local_cloud: Any, stack: StepEnv, tmp_path: Path, n: int
                      ) -> Counter[str]:
    """Prune a recipe with ``n`` builds beyond the newest, each with a copy in COPY,
    counting every AWS call the run makes, by operation."""
    setup = AwsContext(region=HOME, endpoint_url=local_cloud.endpoint)
    env = dataclasses.replace(stack, aws=setup)
    recipe = f"calls-{uuid.uuid4().hex[:8]}"
    home, copy = setup.client("ec2", HOME), setup.client("ec2", COPY)
    records, snapshots = [], []
    for age in [0, *range(10, 10 + n)]:
        build = build_id(recipe)
        home_image, home_snap = image_of(home, recipe, build)
        copy_image, copy_snap = image_of(copy, recipe, build, copy_of=home_image)
        records.append(record(recipe, build, age, {HOME: home_image, COPY: copy_image}))
        snapshots.append((home_snap, copy_snap))
    publish_retention(env, tmp_path, recipe)
    seed(env, *records)
    calls: Counter[str] = Counter()
    session = boto3.session.Session(region_name=HOME)
    # Every client the run makes copies the session's handlers, so every call is counted.
    session.events.register("before-call.*.*", lambda model, **_: calls.update([model.name]))
    counted = dataclasses.replace(stack, aws=AwsContext(
        region=HOME, endpoint_url=local_cloud.endpoint, session=session))
    report = prune({"recipes": [recipe]}, counted)
    assert report["pruned"] == n and report["errors"] == 0
    for home_snap, copy_snap in snapshots[1:]:   # the pruned builds' snapshots are gone
        assert not snapshot_exists(home, home_snap) and not snapshot_exists(copy, copy_snap)
    assert snapshot_exists(home, snapshots[0][0]) and snapshot_exists(copy, snapshots[0][1])
    return calls


def test_each_pruned_image_costs_its_removal_and_nothing_is_read_twice(
        local_cloud: Any, stack: StepEnv, tmp_path: Path) -> None:
    small, large = (pruned_with_calls(local_cloud, stack, tmp_path, n) for n in (1, 4))
    images = 2 * (4 - 1)                       # 3 more builds, an image in each region
    extra = large - small
    # One more image: its DeregisterImage and DeleteSnapshot; one more build: the
    # record's UpdateItem. Every read (listings, usage, latest, the catalog) is per run.
    assert extra == Counter({"DeregisterImage": images, "DeleteSnapshot": images,
                             "UpdateItem": images // 2})
    assert sum(extra.values()) / images <= 4
    # One listing of the builds' images and one of their snapshots per region.
    assert large["DescribeImages"] == 2 and large["DescribeSnapshots"] == 2
    assert large["GetItem"] == 0
