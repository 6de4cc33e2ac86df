"""The CloudFormation builder's steps (``steps/build_stack.py``) on the local cloud: the
recipe's template becomes a build stack given the pinned base and amiforge's tags; a
retried create finds its stack; the stack's InstanceId output is the builder, which
StopBuilder stops; a template that breaks the contract fails the build saying why."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import AL2023, instance_state, publish_recipe, resolved, unique, wait_state

from amiforge.aws import cloudformation as cfn_api
from amiforge.core.model import Recipe
from amiforge.core.parse import recipe_from_document
from amiforge.core.recipes import load_recipes
from amiforge.core.tags import BUILD_ID, STACK
from amiforge.errors import BuildFailed
from amiforge.steps.build_stack import (
    STACK_PREFIX,
    await_build_stack,
    create_build_stack,
    delete_build_stack,
    stack_name,
    stop_builder,
)
from amiforge.steps.env import StepEnv


@pytest.fixture(autouse=True)
def no_stack_left(env: StepEnv) -> Iterator[None]:
    """Delete the build stacks a test made: the worker's local cloud is shared, and the
    sweeper's journeys count every amiforge-build-* stack in the region."""
    cfn = env.client("cloudformation")
    before = {s["StackId"] for s in cfn_api.stacks_named(cfn, STACK_PREFIX)}
    yield
    for stack in cfn_api.stacks_named(cfn, STACK_PREFIX):
        if stack["StackId"] not in before:
            cfn_api.delete(cfn, stack["StackId"])


def template(*, base_parameter: bool = True, output: bool = True) -> str:
    parameters = {"BuildId": {"Type": "String"}}
    if base_parameter:
        parameters["BaseImageId"] = {"Type": "AWS::EC2::Image::Id"}
    body: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09", "Parameters": parameters,
        "Resources": {"Builder": {"Type": "AWS::EC2::Instance", "Properties": {
            "ImageId": {"Ref": "BaseImageId"} if base_parameter else "ami-0123456789abcdef0",
            "InstanceType": "t3.small",
            "Tags": [{"Key": "build", "Value": {"Ref": "BuildId"}}]}}}}
    if output:
        body["Outputs"] = {"InstanceId": {"Value": {"Ref": "Builder"}}}
    return json.dumps(body, indent=1)


def cfn_recipe(env: StepEnv, directory: Path, body: str, stored: str | None = None
               ) -> Recipe:
    """A recipe built by ``body``; ``stored``: the template text the recipe store holds
    instead (a store written by hand or by an older amiforge: loading checks ``body``)."""
    name = unique("sabs")
    here = directory / name
    (here / "templates").mkdir(parents=True)
    (here / "templates" / "build.json").write_text(body)
    (here / f"{name}.yaml").write_text(
        f"name: {name}\nbase: {{ssm_parameter: {AL2023}}}\n"
        "build:\n  platform: linux\n  cloudformation: templates/build.json\n")
    (recipe,) = load_recipes(here)
    if stored is None:
        publish_recipe(env, recipe)
    else:
        document = recipe.to_document()
        document["files"]["templates/build.json"] = base64.b64encode(stored.encode()).decode()
        recipe = recipe_from_document(document)  # documents are not checked as files are
        env.store.publish(recipe.name, recipe.hash, document, None)
    return recipe


def test_the_build_stack_gets_the_base_and_tags_and_yields_the_builder(
        env: StepEnv, recipe_dir: Path) -> None:
    state = resolved(env, cfn_recipe(env, recipe_dir, template()))
    build = state["build"]
    cfn = env.client("cloudformation")

    created = create_build_stack(state, env)
    assert created == {"stack_name": stack_name(build["build_id"]), "state": "creating",
                       "polls": 0}
    assert create_build_stack(state, env) == created  # a retry finds its stack
    (stack,) = cfn.describe_stacks(StackName=created["stack_name"])["Stacks"]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]} == {
        "BaseImageId": build["base_ami"], "BuildId": build["build_id"]}
    tags = {t["Key"]: t["Value"] for t in stack["Tags"]}
    assert (tags[BUILD_ID], tags[STACK], tags["amiforge:role"]) == (
        build["build_id"], env.stack_name, "builder")

    state["stack"] = await_build_stack({**state, "stack": created}, env)
    instance_id = state["stack"]["instance_id"]
    assert state["stack"]["state"] == "complete"
    assert env.client("ec2").describe_instances(InstanceIds=[instance_id])[
        "Reservations"][0]["Instances"][0]["ImageId"] == build["base_ami"]

    assert stop_builder(state, env) == {"instance_id": instance_id, "attempt": 1}
    wait_state(env, instance_id, "stopped")
    record = env.catalog.get(build["recipe"], build["build_id"])
    assert (record["instance_id"], record["launches"]) == (instance_id, 1)

    assert delete_build_stack(env, build["build_id"]) is True
    assert instance_state(env, instance_id) in ("shutting-down", "terminated", "stopped")


def test_a_template_without_base_image_id_creates_nothing(env: StepEnv,
                                                          recipe_dir: Path) -> None:
    recipe = cfn_recipe(env, recipe_dir, template(), stored=template(base_parameter=False))
    state = resolved(env, recipe)
    with pytest.raises(BuildFailed, match="must declare the parameter BaseImageId"):
        create_build_stack(state, env)
    stacks = env.client("cloudformation").list_stacks()["StackSummaries"]
    assert stack_name(state["build"]["build_id"]) not in {s["StackName"] for s in stacks}


def test_a_stack_without_the_instance_output_fails_the_build(env: StepEnv,
                                                              recipe_dir: Path) -> None:
    state = resolved(env, cfn_recipe(env, recipe_dir, template(),
                                     stored=template(output=False)))
    created = create_build_stack(state, env)
    with pytest.raises(BuildFailed, match="has no output InstanceId"):
        await_build_stack({**state, "stack": created}, env)


def test_a_stack_that_is_gone_fails_the_build(env: StepEnv, recipe_dir: Path) -> None:
    state = resolved(env, cfn_recipe(env, recipe_dir, template()))
    gone = {"stack_name": stack_name(state["build"]["build_id"]), "polls": 0}
    with pytest.raises(BuildFailed, match="DELETE_COMPLETE: no failed resource reported"):
        await_build_stack({**state, "stack": gone}, env)


# -- what the template is given: build.parameters, the network, large templates, IAM ------

def declaring(*names: str, padding: int = 0, role: bool = False) -> str:
    """template() declaring ``names`` too (no Default); ``padding`` bytes of a file
    cfn-init writes make it large; ``role``: it also makes a bounded role and instance profile."""
    body = json.loads(template())
    types = {"SubnetId": "AWS::EC2::Subnet::Id",
             "SecurityGroupIds": "List<AWS::EC2::SecurityGroup::Id>"}
    body["Parameters"].update({n: {"Type": types.get(n, "String")} for n in names})
    builder = body["Resources"]["Builder"]["Properties"]
    for n in names:  # each is used, as a real template would (and cfn-lint wants)
        if n in types:
            builder[n] = {"Ref": n}
        else:
            builder["Tags"].append({"Key": n, "Value": {"Ref": n}})
    if padding:  # cfn-init file content: how real templates grow past 51,200 bytes
        body["Resources"]["Builder"]["Metadata"] = {"AWS::CloudFormation::Init": {
            "config": {"files": {"/etc/app.conf": {"content": "x" * padding}}}}}
    if role:
        body["Parameters"]["RolePermissionsBoundary"] = {"Type": "String"}
        body["Resources"]["Role"] = {"Type": "AWS::IAM::Role", "Properties": {
            "PermissionsBoundary": {"Ref": "RolePermissionsBoundary"},
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole"}]}}}
        body["Resources"]["Profile"] = {"Type": "AWS::IAM::InstanceProfile",
                                        "Properties": {"Roles": [{"Ref": "Role"}]}}
    return json.dumps(body)


def recipe_with(env: StepEnv, directory: Path, body: str, build: str) -> Recipe:
    name = unique("tpl")
    here = directory / name
    (here / "templates").mkdir(parents=True)
    (here / "templates" / "build.json").write_text(body)
    (here / f"{name}.yaml").write_text(
        f"name: {name}\nbase: {{ssm_parameter: {AL2023}}}\n"
        f"build:\n  cloudformation: templates/build.json\n{build}")
    (recipe,) = load_recipes(here)
    publish_recipe(env, recipe)
    return recipe


def parameters_of(env: StepEnv, stack: str) -> dict[str, str]:
    (described,) = env.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    return {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}


def test_build_parameters_and_the_subnet_reach_the_template(env: StepEnv,
                                                             recipe_dir: Path) -> None:
    subnet = env.client("ec2").describe_subnets()["Subnets"][0]["SubnetId"]
    recipe = recipe_with(env, recipe_dir, declaring("AppVersion", "SubnetId"),
                         f"  subnet_id: {subnet}\n  parameters: {{AppVersion: '2.4'}}\n")
    state = resolved(env, recipe)
    created = create_build_stack(state, env)
    assert parameters_of(env, created["stack_name"]) == {
        "BaseImageId": state["build"]["base_ami"], "BuildId": state["build"]["build_id"],
        "AppVersion": "2.4", "SubnetId": subnet}


def test_security_groups_must_carry_this_stack_s_tag(env: StepEnv, recipe_dir: Path) -> None:
    ec2 = env.client("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName=unique("sg"), Description="x",
                                      VpcId=vpc)["GroupId"]
    recipe = recipe_with(env, recipe_dir, declaring("SecurityGroupIds"),
                         f"  security_group_ids: [{group}]\n")
    state = resolved(env, recipe)
    with pytest.raises(BuildFailed, match=f"build.security_group_ids: security group {group} "
                                          f"does not carry the tag amiforge:stack="):
        create_build_stack(state, env)
    ec2.create_tags(Resources=[group], Tags=[{"Key": STACK, "Value": env.stack_name}])
    assert joined_groups(env, state) == [group]


def joined_groups(env: StepEnv, state: dict[str, Any]) -> list[str]:
    """The groups the build stack's instance joined."""
    created = create_build_stack(state, env)
    instance = await_build_stack({**state, "stack": created}, env)["instance_id"]
    (reservation,) = env.client("ec2").describe_instances(
        InstanceIds=[instance])["Reservations"]
    return [g["GroupId"] for g in reservation["Instances"][0]["SecurityGroups"]]


def test_without_recipe_groups_the_template_gets_the_builder_group(
        env: StepEnv, recipe_dir: Path) -> None:
    recipe = recipe_with(env, recipe_dir, declaring("SecurityGroupIds"), "")
    assert joined_groups(env, resolved(env, recipe)) == [env.builder_security_group_id]


def test_a_published_recipe_missing_a_value_creates_nothing(env: StepEnv,
                                                            recipe_dir: Path) -> None:
    recipe = cfn_recipe(env, recipe_dir, template(), stored=declaring("AppVersion"))
    state = resolved(env, recipe)
    with pytest.raises(BuildFailed, match="build.parameters: templates/build.json declares "
                                          "the parameter AppVersion with no Default"):
        create_build_stack(state, env)
    stacks = env.client("cloudformation").list_stacks()["StackSummaries"]
    assert stack_name(state["build"]["build_id"]) not in {s["StackName"] for s in stacks}


@pytest.fixture
def bucket_env(env: StepEnv) -> StepEnv:
    account = env.client("sts").get_caller_identity()["Account"]
    bucket = unique("artifacts")
    env.client("s3").create_bucket(Bucket=bucket)
    return dataclasses.replace(env, artifact_bucket=bucket, account_id=account)


def test_a_60_kb_template_goes_through_the_artifact_bucket(bucket_env: StepEnv,
                                                           recipe_dir: Path) -> None:
    env = bucket_env
    body = declaring(padding=60_000)
    assert len(body.encode()) > 60_000
    recipe = recipe_with(env, recipe_dir, body, "")
    state = resolved(env, recipe)
    created = create_build_stack(state, env)
    key = f"build-templates/{hashlib.sha256(body.encode()).hexdigest()}.template"
    stored = env.client("s3").get_object(Bucket=env.artifact_bucket, Key=key)
    assert stored["Body"].read() == body.encode()
    assert await_build_stack({**state, "stack": created}, env)["state"] == "complete"


def test_a_large_template_without_a_bucket_fails_saying_so(env: StepEnv,
                                                           recipe_dir: Path) -> None:
    recipe = recipe_with(env, recipe_dir, declaring(padding=60_000), "")
    with pytest.raises(BuildFailed, match="over CloudFormation's inline limit of 51,200"):
        create_build_stack(resolved(env, recipe), env)


def test_iam_resources_need_the_stack_s_opt_in(env: StepEnv, recipe_dir: Path) -> None:
    recipe = recipe_with(env, recipe_dir, declaring(role=True), "")
    state = resolved(env, recipe)
    with pytest.raises(BuildFailed, match="creates IAM resources .CAPABILITY_IAM., which "
                                          "this stack does not allow build templates: "
                                          "deploy it with -p BuildTemplateIam=enabled"):
        create_build_stack(state, env)
    boundary = env.client("iam").create_policy(
        PolicyName=unique("boundary"), PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                                                    "Action": "s3:GetObject",
                                                    "Resource": "*"}]}))["Policy"]["Arn"]
    allowed = dataclasses.replace(env, build_role_boundary_arn=boundary)
    created = create_build_stack(state, allowed)
    assert parameters_of(env, created["stack_name"])["RolePermissionsBoundary"] == boundary
    assert await_build_stack({**state, "stack": created}, allowed)["state"] == "complete"
