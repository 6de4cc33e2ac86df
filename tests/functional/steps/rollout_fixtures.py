"""What the rollout step tests share: a recipe with ``release.launch_templates`` and
``release.instance_refresh`` built and registered (by running the steps), and a
consumer's launch template and Auto Scaling group tagged for the stack."""

from __future__ import annotations

import time
from typing import Any

from tests.helpers import HOME, Publish, imaged, unique

from amiforge.core.model import Recipe
from amiforge.steps.distribute import distribute
from amiforge.steps.env import StepEnv
from amiforge.steps.refresh_wait import judge, record
from amiforge.steps.register import register


def rollout_recipe(published: Publish, template: str, group: str | None = None,
                   adopt: bool = False) -> Recipe:
    refresh = (f"  instance_refresh: [{{auto_scaling_group: {group}, "
               "min_healthy_percentage: 50, instance_warmup_seconds: 0}]\n" if group else "")
    entry = f"{{launch_template: {template}, adopt: true}}" if adopt else template
    return published(extra=f"release:\n  launch_templates: [{entry}]\n{refresh}")


def registered(env: StepEnv, recipe: Recipe) -> dict[str, Any]:
    """The state after a good build's Register: {..., result}."""
    state = imaged(env, recipe)
    state["distribution"] = distribute(state, env)
    state["result"] = register(state, env)
    return state


def consumer_template(env: StepEnv, image_id: str, *, tagged: bool = True,
                      name: str | None = None) -> tuple[str, str]:
    name = name or unique("lt")
    tags = ([{"ResourceType": "launch-template",
              "Tags": [{"Key": "amiforge:rollout", "Value": env.stack_name}]}]
            if tagged else [])
    made = env.client("ec2").create_launch_template(
        LaunchTemplateName=name, TagSpecifications=tags,
        LaunchTemplateData={"ImageId": image_id, "InstanceType": "t3.micro"})
    return name, made["LaunchTemplate"]["LaunchTemplateId"]


def consumer_group(env: StepEnv, template_id: str, directive: str | None = None, *,
                   name: str | None = None) -> str:
    name = name or unique("asg")
    tags = [{"Key": "amiforge:rollout", "Value": env.stack_name, "PropagateAtLaunch": False}]
    if directive:
        tags.append({"Key": "amiforge-sim:refresh", "Value": directive,
                     "PropagateAtLaunch": False})
    env.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name, MinSize=2, MaxSize=2, DesiredCapacity=2,
        AvailabilityZones=[f"{HOME}a"], Tags=tags,
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": "$Default"})
    return name


def default_of(env: StepEnv, template_id: str) -> tuple[int, str]:
    lt = env.client("ec2").describe_launch_templates(
        LaunchTemplateIds=[template_id])["LaunchTemplates"][0]
    number = lt["DefaultVersionNumber"]
    version = env.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=template_id, Versions=[str(number)])["LaunchTemplateVersions"][0]
    return number, version["LaunchTemplateData"]["ImageId"]


def group_images(env: StepEnv, group: str) -> set[str]:
    instances = env.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]
    ids = [i["InstanceId"] for i in instances]
    reservations = env.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return {i["ImageId"] for r in reservations for i in r["Instances"]}


def awaited(env: StepEnv, state: dict[str, Any]) -> dict[str, Any]:
    """The refreshes read until none runs, and the outcome recorded (what the refresh
    wait does once an event or the check settles it; steps/refresh_wait.py has its own
    tests)."""
    rollout = state["rollout"]
    for _ in range(200):
        if rollout["outcome"] != "running":
            break
        time.sleep(0.05)
        rollout = judge(env, rollout)
    else:
        raise AssertionError(f"the refresh never ended: {rollout}")
    record(env, state["build"]["recipe"], state["build"]["build_id"], rollout)
    state["rollout"] = rollout
    return rollout
