"""Issue 16: builders are isolated and everything a build makes carries the stack tag.

A builder without ``security_group_ids`` joins the stack's own group (no inbound rules),
never the VPC's default group; a recipe's own groups are used as they are. The instance,
its volumes, the image and its snapshots are tagged ``amiforge:stack`` at creation: the
tag every destructive IAM permission of the stack is conditioned on.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from amiforge.core.tags import BUILD_ID, STACK
from amiforge.localcloud.testing import images_of_build, snapshots_of_build, wait_for

pytestmark = pytest.mark.e2e
STACK_NAME = "amiforge-e2e"  # the stack the e2e conftest deploys


def builders(aws: Any, build_id: str) -> list[dict]:
    reservations = aws.client("ec2").describe_instances(
        Filters=[{"Name": f"tag:{BUILD_ID}", "Values": [build_id]}])["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def stack_group(aws: Any) -> dict:
    resource = aws.client("cloudformation").describe_stack_resource(
        StackName=STACK_NAME, LogicalResourceId="BuilderSecurityGroup")
    group_id = resource["StackResourceDetail"]["PhysicalResourceId"]
    (group,) = aws.client("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    return group


def build(amiforge: Any, name: str) -> dict:
    result = amiforge("build", "--wait", name, output="json")
    assert result.exit_code == 0, result.output
    (built,) = json.loads(result.stdout)["builds"]
    return built


def test_builders_join_only_the_stack_s_no_inbound_group(amiforge: Any, aws: Any,
                                                         recipe_dir: Any) -> None:
    group = stack_group(aws)
    assert group["GroupName"] != "default"
    assert group["IpPermissions"] == []  # no inbound rule at all
    assert tags(group)[STACK] == STACK_NAME
    assert amiforge("publish", str(recipe_dir("isolated"))).exit_code == 0
    built = build(amiforge, "isolated")
    (builder,) = builders(aws, built["build_id"])
    assert [g["GroupId"] for g in builder["SecurityGroups"]] == [group["GroupId"]]


def test_a_recipe_s_own_groups_are_used_instead(amiforge: Any, aws: Any,
                                               recipe_dir: Any) -> None:
    ec2 = aws.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    own = ec2.create_security_group(GroupName="team-builders", Description="team",
                                    VpcId=vpc["VpcId"])["GroupId"]
    directory = recipe_dir("owngroup", extra="")
    recipe = directory / "owngroup.yaml"
    recipe.write_text(recipe.read_text().replace(
        "  retries: 0\n", f"  retries: 0\n  security_group_ids: [{own}]\n"))
    published = amiforge("publish", str(directory))
    assert published.exit_code == 0, published.output
    built = build(amiforge, "owngroup")
    (builder,) = builders(aws, built["build_id"])
    assert [g["GroupId"] for g in builder["SecurityGroups"]] == [own]


def test_everything_a_build_makes_carries_the_stack_tag(amiforge: Any, aws: Any,
                                                       recipe_dir: Any) -> None:
    assert amiforge("publish", str(recipe_dir("stacktag"))).exit_code == 0
    built = build(amiforge, "stacktag")
    ec2 = aws.client("ec2")
    (builder,) = builders(aws, built["build_id"])
    made = [builder, *images_of_build(ec2, built["build_id"]),
            *snapshots_of_build(ec2, built["build_id"])]
    assert len(made) >= 3
    assert {tags(r).get(STACK) for r in made} == {STACK_NAME}
    # ... and the latest parameter Register set (tagged after the put: PutParameter
    # cannot tag while it overwrites).
    ssm = aws.client("ssm")
    parameter_tags = ssm.list_tags_for_resource(
        ResourceType="Parameter", ResourceId="/amiforge/stacktag/latest")["TagList"]
    assert {t["Key"]: t["Value"] for t in parameter_tags}.get(STACK) == STACK_NAME


def test_a_live_builder_s_volumes_and_interfaces_carry_the_stack_tag(
        amiforge: Any, aws: Any, recipe_dir: Any) -> None:
    # Volumes and interfaces go with the builder: look while it runs (it hangs, and its
    # timeout is far off), then cancel the build (the timeout path has its own test).
    directory = recipe_dir("livetag", "# amiforge-sim: hang\nsleep infinity\n",
                           timeout_minutes=600)
    assert amiforge("publish", str(directory)).exit_code == 0
    started = amiforge("build", "livetag", output="json")
    (build_id,) = [b["build_id"] for b in json.loads(started.stdout)["builds"]]
    ec2 = aws.client("ec2")
    builder = wait_for(lambda: next((i for i in builders(aws, build_id)
                                     if i["State"]["Name"] == "running"), None),
                       what="the builder running")
    volumes = ec2.describe_volumes(VolumeIds=[
        m["Ebs"]["VolumeId"] for m in builder["BlockDeviceMappings"]])["Volumes"]
    interfaces = ec2.describe_network_interfaces(NetworkInterfaceIds=[
        n["NetworkInterfaceId"] for n in builder["NetworkInterfaces"]])["NetworkInterfaces"]
    assert volumes and interfaces
    assert {tags(v).get(STACK) for v in volumes} == {STACK_NAME}
    assert {t["Value"] for n in interfaces for t in n["TagSet"] if t["Key"] == STACK} == {
        STACK_NAME}
    cancelled = amiforge("cancel", build_id, "--reason", "tags seen", output="json")
    assert cancelled.exit_code == 0, cancelled.output
    (done,) = json.loads(cancelled.stdout)["cancelled"]
    assert (done["status"], done["terminated"]) == ("CANCELLED", [builder["InstanceId"]])


def test_a_malformed_execution_input_fails_recorded_naming_the_field(aws: Any,
                                                                     stack: Any) -> None:
    sfn = aws.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=stack.state_machine_arn,
                              name="malformed-input",
                              input=json.dumps({"recipe": ["web"]}))["executionArn"]
    ended = wait_for(lambda: (d := sfn.describe_execution(executionArn=arn))["status"]
                     != "RUNNING" and d, timeout=60, what="the execution to end")
    assert ended["status"] == "FAILED"
    history = json.dumps(sfn.get_execution_history(executionArn=arn, maxResults=1000),
                         default=str)
    # Resolve refused the event at its boundary; the Catch took it to RecordFailure.
    assert "InvalidEvent" in history
    assert "resolve_and_launch event refused: input.recipe must be a recipe name" in history
    assert "RecordFailure" in history
