"""The CloudFormation builder's steps (``steps/build_stack.py``) on the local cloud: the
recipe's template becomes a build stack given the pinned base and amiforge's tags; a
retried create finds its stack; the stack's InstanceId output is the builder, which
StopBuilder stops; a template that breaks the contract fails the build saying why."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import AL2023, instance_state, publish_recipe, resolved, unique, wait_state

from amiforge.core.model import Recipe
from amiforge.core.parse import recipe_from_document
from amiforge.core.recipes import load_recipes
from amiforge.core.tags import BUILD_ID, STACK
from amiforge.errors import BuildFailed
from amiforge.steps.build_stack import (
    await_build_stack,
    create_build_stack,
    delete_build_stack,
    stack_name,
    stop_builder,
)
from amiforge.steps.env import StepEnv


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
