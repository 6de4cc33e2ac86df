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
from amiforge.localcloud.testing import images_of_build, snapshots_of_build

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
    (built,) = json.loads(result.stdout)
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
    volumes = ec2.describe_volumes(Filters=[{"Name": f"tag:{BUILD_ID}",
                                             "Values": [built["build_id"]]}])["Volumes"]
    made.extend(volumes)
    assert len(made) >= 3
    assert {tags(r).get(STACK) for r in made} == {STACK_NAME}
