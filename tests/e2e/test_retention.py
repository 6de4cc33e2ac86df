"""Issue 7 journeys, retention: an image in use is never pruned, whatever the kind of use;
an unused old one is pruned with its snapshots; a dry run prints what the run then does.

One recipe is built fourteen times (one build per recipe version).
The newest image is what /amiforge/<recipe>/latest holds; every other one is made ten
days old in the catalog, so that ``retention: {keep: 1, max_age_days: 5}`` would prune
it. Twelve of them are then used in twelve different ways and one is left unused.
"""

from __future__ import annotations

import json
import textwrap
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from amiforge.cli.main import cli
from amiforge.core.tags import BUILD_ID
from amiforge.ops.builds import wait_for_builds

pytestmark = pytest.mark.e2e
STACK = "amiforge-e2e"
RECIPE = "kept-in-use"
BASE = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"
KINDS = ("running instance", "stopped instance", "launch template default version",
         "launch template latest version", "auto scaling group launch template",
         "auto scaling group mixed instances policy", "auto scaling group launch configuration",
         "launch configuration", "amiforge parameter", "image parameter",
         "launch template middle version", "text parameter")


@dataclass
class World:
    newest: str
    unused: str
    used: dict[str, str]              # kind -> image id
    where: dict[str, str]             # kind -> what the reason must name
    builds: dict[str, str]            # image id -> build id
    snapshots: dict[str, list[str]]   # image id -> snapshot ids
    plans: dict[str, dict] = field(default_factory=dict)


def run_cli(local_cloud: Any, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--endpoint-url", local_cloud.endpoint, "--region",
                                      local_cloud.region, "--stack", STACK, "--output", "json",
                                      *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def write_version(directory: Path, version: int) -> None:
    (directory / "scripts").mkdir(parents=True, exist_ok=True)
    (directory / "scripts" / f"{RECIPE}.sh").write_text(f"#!/bin/bash\necho version {version}\n")
    (directory / f"{RECIPE}.yaml").write_text(textwrap.dedent(f"""\
        name: {RECIPE}
        description: retention e2e
        base:
          ssm_parameter: {BASE}
        build:
          platform: linux
          user_data: scripts/{RECIPE}.sh
          instance_types: [t3.small]
          timeout_minutes: 30
          retries: 0
        image:
          tags: {{team: e2e}}
          deprecate_after_days: 30
        retention: {{keep: 1, max_age_days: 5}}
        """))


def build_versions(local_cloud: Any, stack: Any, directory: Path, count: int) -> None:
    """Publish ``count`` versions one after the other; each publish starts one build.

    One at a time on purpose: concurrent builds each need their own (cold) Lambda
    environments, and on a small machine that costs more than it saves.
    """
    for version in range(count):
        write_version(directory, version)
        (entry,) = run_cli(local_cloud, "publish", str(directory))["recipes"]
        assert entry["build_started"], entry
        (result,) = wait_for_builds(stack, [{"recipe": RECIPE,
                                             "build_id": entry["build_started"]}], timeout=600)
        assert result["status"] == "AVAILABLE", result


def use_images(aws: Any, images: dict[str, str], token: str) -> dict[str, str]:
    """Use each image in its own way; returns kind -> what the reason must name."""
    ec2, autoscaling, ssm = (aws.client(s) for s in ("ec2", "autoscaling", "ssm"))
    other = ssm.get_parameter(Name=BASE)["Parameter"]["Value"]  # not one of ours
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    where: dict[str, str] = {}

    def instance(image: str) -> str:
        return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                 InstanceType="t3.micro")["Instances"][0]["InstanceId"]

    def template(name: str, *versions: str) -> str:
        template_id = ec2.create_launch_template(
            LaunchTemplateName=name, LaunchTemplateData={"ImageId": versions[0]}
        )["LaunchTemplate"]["LaunchTemplateId"]
        for image in versions[1:]:
            ec2.create_launch_template_version(LaunchTemplateId=template_id,
                                               LaunchTemplateData={"ImageId": image})
        return template_id

    running = instance(images["running instance"])
    where["running instance"] = f"instance {running} (running)"
    stopped = instance(images["stopped instance"])
    ec2.stop_instances(InstanceIds=[stopped])
    where["stopped instance"] = f"instance {stopped} (stopped)"

    name = f"lt-default-{token}"
    lt = template(name, images["launch template default version"], other)  # v2 is latest
    where["launch template default version"] = f"launch template {lt} ({name}) $Default"
    name = f"lt-latest-{token}"
    lt = template(name, other, images["launch template latest version"])
    where["launch template latest version"] = f"launch template {lt} ({name}) $Latest"

    # Groups use version 2 of a template whose default (1) and latest (3) are not ours.
    lt = template(f"lt-group-{token}", other, images["auto scaling group launch template"],
                  other)
    group = f"asg-lt-{token}"
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=group, MinSize=0, MaxSize=0, VPCZoneIdentifier=subnet,
        LaunchTemplate={"LaunchTemplateId": lt, "Version": "2"})
    where["auto scaling group launch template"] = (
        f"Auto Scaling group {group} (launch template {lt} 2)")
    lt = template(f"lt-mixed-{token}", other,
                  images["auto scaling group mixed instances policy"], other)
    group = f"asg-mixed-{token}"
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=group, MinSize=0, MaxSize=0, VPCZoneIdentifier=subnet,
        MixedInstancesPolicy={"LaunchTemplate": {
            "LaunchTemplateSpecification": {"LaunchTemplateId": lt, "Version": "2"},
            "Overrides": [{"InstanceType": "t3.micro"}, {"InstanceType": "t3a.micro"}]}})
    where["auto scaling group mixed instances policy"] = (
        f"Auto Scaling group {group} (mixed instances policy, launch template {lt} 2)")

    config = f"lc-group-{token}"
    autoscaling.create_launch_configuration(
        LaunchConfigurationName=config, InstanceType="t3.micro",
        ImageId=images["auto scaling group launch configuration"])
    group = f"asg-lc-{token}"
    autoscaling.create_auto_scaling_group(AutoScalingGroupName=group, MinSize=0, MaxSize=0,
                                          VPCZoneIdentifier=subnet,
                                          LaunchConfigurationName=config)
    where["auto scaling group launch configuration"] = (
        f"Auto Scaling group {group} (launch configuration {config})")
    config = f"lc-alone-{token}"
    autoscaling.create_launch_configuration(LaunchConfigurationName=config,
                                            InstanceType="t3.micro",
                                            ImageId=images["launch configuration"])
    where["launch configuration"] = f"launch configuration {config}"

    name = f"/amiforge/{RECIPE}/pinned-{token}"  # amiforge's path, plain text
    ssm.put_parameter(Name=name, Type="String", Value=images["amiforge parameter"])
    where["amiforge parameter"] = f"SSM parameter {name}"
    name = f"/team-{token}/golden-ami"  # anyone's parameter of data type aws:ec2:image
    ssm.put_parameter(Name=name, Type="String", DataType="aws:ec2:image",
                      Value=images["image parameter"])
    where["image parameter"] = f"SSM parameter {name}"
    # Neither the default nor the latest version: version 2 of 3 can still be launched.
    name = f"lt-middle-{token}"
    lt = template(name, other, images["launch template middle version"], other)
    where["launch template middle version"] = f"launch template {lt} ({name}) version 2"
    name = f"/team-{token}/pinned-ami"  # a plain String (data type text), not amiforge's
    ssm.put_parameter(Name=name, Type="String", Value=images["text parameter"])
    where["text parameter"] = f"SSM parameter {name}"
    return where


@pytest.fixture(scope="module")
def world(local_cloud: Any, aws: Any, stack: Any,
          tmp_path_factory: pytest.TempPathFactory) -> World:
    directory = tmp_path_factory.mktemp("retention")
    build_versions(local_cloud, stack, directory, len(KINDS) + 2)
    records = [b for b in stack.catalog.history(RECIPE) if b["status"] == "AVAILABLE"]
    assert len(records) == len(KINDS) + 2
    newest = aws.client("ssm").get_parameter(Name=f"/amiforge/{RECIPE}/latest")[
        "Parameter"]["Value"]
    builds = {r["image_id"]: r["build_id"] for r in records}
    older = sorted(image for image in builds if image != newest)
    # Ten days old in the catalog (what retention reads), newest stays as it is.
    now = datetime.now(UTC)
    for minutes, image in enumerate(older):
        when = now - timedelta(days=10, minutes=minutes)
        stack.catalog.update(RECIPE, builds[image],
                             created_at=when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    latest = stack.catalog.latest(RECIPE)
    assert latest is not None and latest["image_id"] == newest
    used = dict(zip(KINDS, older, strict=False))
    ec2 = aws.client("ec2")
    snapshots = {image: [m["Ebs"]["SnapshotId"] for m in ec2.describe_images(
        ImageIds=[image])["Images"][0]["BlockDeviceMappings"] if "Ebs" in m]
        for image in builds}
    world = World(newest=newest, unused=older[-1], used=used,
                  where=use_images(aws, used, uuid.uuid4().hex[:8]), builds=builds,
                  snapshots=snapshots)
    world.plans["dry"] = run_cli(local_cloud, "prune", "--dry-run", RECIPE)
    world.plans["real"] = run_cli(local_cloud, "prune", RECIPE)
    world.plans["again"] = run_cli(local_cloud, "prune", "--dry-run", RECIPE)
    return world


def decisions(report: dict) -> dict[str, dict]:
    return {d["image_id"]: d for d in report["decisions"]}


def rows(report: dict) -> list[tuple[str, str, str, str]]:
    return [(d["recipe"], d["image_id"], d["action"], d["reason"])
            for d in report["decisions"]]


def test_the_dry_run_prints_exactly_what_the_run_then_does(world: World) -> None:
    dry, real = world.plans["dry"], world.plans["real"]
    assert dry["dry_run"] is True and real["dry_run"] is False
    assert rows(dry) == rows(real)
    assert {d["outcome"] for d in dry["decisions"]} == {"kept", "planned"}
    outcome = {d["action"]: d["outcome"] for d in real["decisions"]}
    assert outcome == {"keep": "kept", "prune": "pruned", "deprecate": "deprecated"}
    assert real["pruned"] == 1 and real["errors"] == 0


def test_an_unused_old_image_is_pruned_with_its_snapshots(world: World, aws: Any,
                                                          stack: Any, local_cloud: Any) -> None:
    decision = decisions(world.plans["real"])[world.unused]
    assert decision["action"] == "prune"
    assert decision["reason"] == ("10 days old, older than max_age_days 5, and not one of "
                                  "the 1 newest image")
    ec2 = aws.client("ec2")
    try:
        gone = ec2.describe_images(ImageIds=[world.unused])["Images"] == []
    except ClientError as err:
        gone = err.response["Error"]["Code"] == "InvalidAMIID.NotFound"
    assert gone
    assert world.snapshots[world.unused]
    build_id = world.builds[world.unused]
    left = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": f"tag:{BUILD_ID}", "Values": [build_id]}])["Snapshots"]
    assert left == []
    record = stack.catalog.get(RECIPE, build_id)
    assert record["status"] == "PRUNED"
    assert "available_recipe" not in record
    assert record["prune_reason"] == decision["reason"]
    history = {b["build_id"]: b["status"] for b in run_cli(local_cloud, "history", RECIPE)["builds"]}
    assert history[build_id] == "PRUNED"


def test_the_newest_image_is_kept(world: World, aws: Any) -> None:
    decision = decisions(world.plans["real"])[world.newest]
    assert (decision["action"], decision["reason"]) == ("keep", "newest available image")
    (image,) = aws.client("ec2").describe_images(ImageIds=[world.newest])["Images"]
    assert "DeprecationTime" not in image


@pytest.mark.parametrize("kind", KINDS)
def test_an_image_in_use_is_kept(world: World, aws: Any, stack: Any, kind: str) -> None:
    image_id = world.used[kind]
    decision = decisions(world.plans["real"])[image_id]
    # Kept, and (image.deprecate_after_days: 30) deprecated 30 days after creation.
    assert decision["action"] == "deprecate", decision
    assert decision["reason"].startswith("in use: ")
    assert world.where[kind] in decision["reason"]
    ec2 = aws.client("ec2")
    (image,) = ec2.describe_images(ImageIds=[image_id])["Images"]
    assert image["State"] == "available"
    assert image["DeprecationTime"].replace(".000Z", "Z") == decision["deprecate_at"]
    for snapshot_id in world.snapshots[image_id]:
        assert ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
    record = stack.catalog.get(RECIPE, world.builds[image_id])
    assert record["status"] == "AVAILABLE"
    assert record["deprecate_at"] == decision["deprecate_at"]


def test_a_second_run_has_nothing_left_to_do(world: World) -> None:
    again = decisions(world.plans["again"])
    assert world.unused not in again
    assert {d["action"] for d in again.values()} == {"keep"}
    for kind, image_id in world.used.items():
        assert world.where[kind] in again[image_id]["reason"]


def test_the_plan_prints_as_a_table(world: World, amiforge: Any) -> None:
    result = amiforge("prune", "--dry-run", RECIPE)
    assert result.exit_code == 0, result.output
    assert "prune (dry run): would prune 0 of" in result.stdout
    assert "┃ recipe" in result.stdout  # the table (its cells fold to the terminal's width)
    # What amiforge cannot see is said with every plan.
    assert "not checked for use: other accounts" in result.stdout


def test_the_scheduled_prune_function_plans_the_same(world: World, aws: Any) -> None:
    response = aws.client("lambda").invoke(
        FunctionName=f"{STACK}-prune",
        Payload=json.dumps({"dry_run": True, "recipes": [RECIPE]}))
    assert "FunctionError" not in response
    assert rows(json.loads(response["Payload"].read())) == rows(world.plans["again"])


def test_pruning_an_unknown_recipe_is_one_line_exit_2(amiforge: Any) -> None:
    result = amiforge("prune", "--dry-run", "no-such-recipe")
    assert result.exit_code == 2
    assert "no-such-recipe" in result.stderr and "not published" in result.stderr
    assert "Traceback" not in result.output
