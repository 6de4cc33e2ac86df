"""Launch starts the builder as a user relies on it: IMDSv2 required, an encrypted root
volume at least as big as the base's, every resource tagged at creation (the stack tag
too), in the stack's no-inbound group, stopping (not terminating) on power-off; and a
retried Launch reuses the instance it started. On the local cloud's EC2."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from tests.helpers import Publish, resolved

from amiforge.core.tags import ATTEMPT, BUILD_ID, RECIPE, ROLE, STACK
from amiforge.errors import OperationFailed
from amiforge.steps.env import StepEnv
from amiforge.steps.launch import launch


def instance(env: StepEnv, instance_id: str) -> dict[str, Any]:
    return env.client("ec2").describe_instances(InstanceIds=[instance_id])[
        "Reservations"][0]["Instances"][0]


def tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def builders_of(env: StepEnv, build_id: str) -> list[str]:
    return sorted(i["InstanceId"] for r in env.client("ec2").describe_instances(Filters=[
        {"Name": f"tag:{BUILD_ID}", "Values": [build_id]}])["Reservations"]
        for i in r["Instances"])


def test_the_builder_is_locked_down_encrypted_and_tagged_at_creation(
        env: StepEnv, published: Publish) -> None:
    state = resolved(env, published(build="volume_size_gb: 20\n"))
    build = state["build"]

    result = launch(state, env)

    started = instance(env, result["instance_id"])
    assert result["attempt"] == 1 and result["instance_type"] == "t3.small"
    assert started["MetadataOptions"]["HttpTokens"] == "required"
    assert [g["GroupId"] for g in started["SecurityGroups"]] == [env.builder_security_group_id]
    assert "KeyName" not in started
    behaviour = env.client("ec2").describe_instance_attribute(
        InstanceId=result["instance_id"], Attribute="instanceInitiatedShutdownBehavior")
    assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "stop"
    instance_tags = tags(started)
    assert {k: instance_tags.get(k) for k in (BUILD_ID, RECIPE, STACK, ROLE, ATTEMPT)} == {
        BUILD_ID: build["build_id"], RECIPE: build["recipe"], STACK: env.stack_name,
        ROLE: "builder", ATTEMPT: "1"}
    (volume,) = env.client("ec2").describe_volumes(Filters=[
        {"Name": "attachment.instance-id", "Values": [result["instance_id"]]}])["Volumes"]
    assert volume["Encrypted"] is True
    assert volume["Size"] == max(20, build["root_volume_gb"])
    assert tags(volume)[BUILD_ID] == build["build_id"]
    record = env.catalog.get(build["recipe"], build["build_id"])
    assert (record["instance_id"], record["launches"]) == (result["instance_id"], 1)


def test_a_retried_launch_reuses_its_instance_and_a_relaunch_starts_another(
        env: StepEnv, published: Publish) -> None:
    state = resolved(env, published())
    first = launch(state, env)
    again = launch(state, env)  # the same attempt: a Lambda retry
    assert again["instance_id"] == first["instance_id"]
    assert builders_of(env, state["build"]["build_id"]) == [first["instance_id"]]

    second = launch({**state, "launch": first}, env)  # Relaunch? went back to Launch
    assert second["attempt"] == 2 and second["instance_id"] != first["instance_id"]
    assert tags(instance(env, second["instance_id"]))[ATTEMPT] == "2"
    assert builders_of(env, state["build"]["build_id"]) == sorted(
        [first["instance_id"], second["instance_id"]])


def test_a_volume_smaller_than_the_base_is_raised_to_the_base(env: StepEnv,
                                                             published: Publish) -> None:
    state = resolved(env, published(build="volume_size_gb: 8\n"))
    assert state["build"]["root_volume_gb"] > 8  # the AL2023 base's root volume
    result = launch(state, env)
    (volume,) = env.client("ec2").describe_volumes(Filters=[
        {"Name": "attachment.instance-id", "Values": [result["instance_id"]]}])["Volumes"]
    assert volume["Size"] == state["build"]["root_volume_gb"]


@pytest.mark.parametrize(("change", "said"), [
    ({"builder_security_group_id": None}, "refusing to launch into the VPC's default group"),
    ({"stack_name": ""}, "AMIFORGE_STACK_NAME is not set"),
])
def test_a_stack_missing_its_group_or_name_launches_nothing(
        env: StepEnv, published: Publish, change: dict[str, Any], said: str) -> None:
    state = resolved(env, published())
    broken = dataclasses.replace(env, **change)
    with pytest.raises(OperationFailed, match=said):
        launch(state, broken)
    assert builders_of(env, state["build"]["build_id"]) == []


def test_build_tags_go_on_the_builder_and_its_volumes(env: StepEnv,
                                                      published: Publish) -> None:
    state = resolved(env, published(build="tags: {cost-center: '4711', team: web}\n"))
    result = launch(state, env)
    instance_tags = tags(instance(env, result["instance_id"]))
    assert instance_tags["cost-center"] == "4711" and instance_tags["team"] == "web"
    # amiforge's own tags are there too: the sweeper and the gate find builders by them.
    assert instance_tags[ROLE] == "builder" and instance_tags[STACK] == env.stack_name
    (volume,) = env.client("ec2").describe_volumes(Filters=[
        {"Name": "attachment.instance-id", "Values": [result["instance_id"]]}])["Volumes"]
    assert tags(volume)["cost-center"] == "4711" and tags(volume)[ROLE] == "builder"


def default_subnet(env: StepEnv) -> dict[str, Any]:
    subnets = env.client("ec2").describe_subnets(
        Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    return sorted(subnets, key=lambda s: s["SubnetId"])[0]


@pytest.mark.parametrize("public", [True, False])
def test_associate_public_ip_goes_on_the_network_interface(env: StepEnv, published: Publish,
                                                           public: bool) -> None:
    subnet = default_subnet(env)
    state = resolved(env, published(build=f"subnet_id: {subnet['SubnetId']}\n"
                                          f"associate_public_ip: {str(public).lower()}\n"))
    started = instance(env, launch(state, env)["instance_id"])
    assert started["SubnetId"] == subnet["SubnetId"]
    assert bool(started.get("PublicIpAddress")) is public
    # The builder keeps the stack's no-inbound group, now on its interface.
    (interface,) = started["NetworkInterfaces"]
    assert [g["GroupId"] for g in interface["Groups"]] == [env.builder_security_group_id]
