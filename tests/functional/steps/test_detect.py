"""Detect on the local cloud: a published recipe whose build key changed starts exactly
one build (an execution named by the key, its STARTING record, then the claim), however
often or concurrently detection runs; a recipe that is up to date, retired, invalid or
whose base does not resolve starts nothing and says why. Real Step Functions executions
(a machine that only waits) stand in for the build state machine."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests.helpers import AL2023, Publish, iso, seed, unique

from amiforge.aws.session import AwsContext
from amiforge.core.hashing import build_key
from amiforge.core.plan import generation_id
from amiforge.steps.detect import ALREADY_STARTED, STARTED, detect, start_next
from amiforge.steps.env import StepEnv


@pytest.fixture(scope="module")
def machine(aws: AwsContext) -> Iterator[str]:
    sfn, name = aws.client("stepfunctions"), unique("builds")
    role = aws.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")
    arn = sfn.create_state_machine(name=name, roleArn=role["Role"]["Arn"], definition=json.dumps(
        {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 600, "End": True}}})
    )["stateMachineArn"]
    yield arn
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn,
                                                              statusFilter="RUNNING"):
        for execution in page["executions"]:
            sfn.stop_execution(executionArn=execution["executionArn"])


@pytest.fixture
def env(stack: StepEnv, machine: str) -> StepEnv:
    return dataclasses.replace(stack, state_machine_arn=machine)


def executions(env: StepEnv, build_id_prefix: str) -> list[dict[str, Any]]:
    sfn = env.client("stepfunctions")
    found = [e for page in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=env.state_machine_arn) for e in page["executions"]
        if e["name"].startswith(build_id_prefix)]
    return [sfn.describe_execution(executionArn=e["executionArn"]) for e in found]


def test_a_new_recipe_starts_one_build_recorded_and_claimed(env: StepEnv,
                                                            published: Publish) -> None:
    recipe = published()
    base = env.client("ssm").get_parameter(Name=AL2023)["Parameter"]["Value"]
    key = build_key(recipe.name, recipe.hash, base)

    report = detect({"recipes": [recipe.name], "trigger": "publish"}, env)

    (decision,) = report["decisions"]
    assert (report["started"], decision["action"], decision["reason"]) == (
        1, "build", "never built")
    assert (decision["build_key"], decision["build_id"], decision["outcome"]) == (
        key, generation_id(key, 1), STARTED)
    (execution,) = executions(env, recipe.name)
    assert execution["name"] == decision["build_id"] and execution["status"] == "RUNNING"
    assert json.loads(execution["input"]) == {"recipe": recipe.name, "recipe_hash": recipe.hash,
                                              "base_ami": base, "trigger": "publish"}
    record = env.catalog.get(recipe.name, decision["build_id"])
    assert (record["status"], record["execution_arn"]) == ("STARTING",
                                                           execution["executionArn"])
    current = env.store.current(recipe.name)
    assert (current["last_build_key"], current["last_build_id"]) == (key, decision["build_id"])

    again = detect({"recipes": [recipe.name], "trigger": "schedule"}, env)
    assert again["started"] == 0
    assert again["decisions"][0]["reason"] == "building"
    assert len(executions(env, recipe.name)) == 1


def test_two_detections_that_read_the_same_state_start_one_build(
        env: StepEnv, published: Publish) -> None:
    recipe = published()
    base = env.client("ssm").get_parameter(Name=AL2023)["Parameter"]["Value"]
    key = build_key(recipe.name, recipe.hash, base)
    claim = env.store.current(recipe.name)  # both read it before either started

    first = start_next(env, recipe, key, base, "schedule", claim)
    second = start_next(env, recipe, key, base, "schedule", claim)

    assert first == (generation_id(key, 1), STARTED)
    assert second == (generation_id(key, 1), ALREADY_STARTED)
    assert len(executions(env, recipe.name)) == 1


def test_an_up_to_date_recipe_starts_nothing(env: StepEnv, published: Publish) -> None:
    recipe = published()
    base = env.client("ssm").get_parameter(Name=AL2023)["Parameter"]["Value"]
    key = build_key(recipe.name, recipe.hash, base)
    build_id = generation_id(key, 1)
    env.store.claim(recipe.name, key, build_id=build_id, base_ami=base, recipe_hash=recipe.hash)
    seed(env, {"recipe": recipe.name, "build_id": build_id, "status": "AVAILABLE",
               "build_key": key, "image_id": "ami-0123456789abcdef0", "created_at": iso(1)})

    report = detect({"recipes": [recipe.name]}, env)

    assert report["started"] == 0
    (decision,) = report["decisions"]
    assert (decision["action"], decision["reason"], decision["detail"]) == (
        "skip", "up to date", f"built as {build_id}")
    assert executions(env, recipe.name) == []


def test_retired_invalid_and_baseless_recipes_start_nothing_and_say_why(
        env: StepEnv, published: Publish) -> None:
    retired = published()
    env.store.retire(retired.name)
    invalid = unique("broken")
    env.store.publish(invalid, "ab" * 32, {"name": invalid, "format": 1, "base": 42}, None)
    baseless = published(base="{ssm_parameter: /aws/service/no-such/parameter}")

    report = detect({"recipes": [retired.name, invalid, baseless.name]}, env)

    by_recipe = {d["recipe"]: d for d in report["decisions"]}
    assert report["started"] == 0 and report["recipes"] == 3
    assert by_recipe[retired.name]["reason"] == "retired"
    assert by_recipe[invalid]["reason"] == "invalid recipe" and by_recipe[invalid]["detail"]
    assert (by_recipe[baseless.name]["reason"], by_recipe[baseless.name]["detail"]) == (
        "base not found", "SSM parameter /aws/service/no-such/parameter does not exist")
    for name in (retired.name, invalid, baseless.name):
        assert executions(env, name) == []


def test_a_failed_key_is_not_retried_before_its_backoff(env: StepEnv,
                                                       published: Publish) -> None:
    recipe = published()
    base = env.client("ssm").get_parameter(Name=AL2023)["Parameter"]["Value"]
    key = build_key(recipe.name, recipe.hash, base)
    failed = generation_id(key, 1)
    env.store.claim(recipe.name, key, build_id=failed, base_ami=base, recipe_hash=recipe.hash)
    seed(env, {"recipe": recipe.name, "build_id": failed, "status": "FAILED",
               "build_key": key, "reason": "build script failed (exit 1)",
               "finished_at": iso(0)})

    (decision,) = detect({"recipes": [recipe.name]}, env)["decisions"]

    assert decision["action"] == "skip" and decision["reason"] == "failed"
    assert executions(env, recipe.name) == []


def test_a_pinned_base_is_built_once_and_a_base_release_does_not_rebuild_it(
        env: StepEnv, published: Publish, local_cloud: Any) -> None:
    family = unique("pinned-family")
    parameter = f"/aws/service/{family}/latest"
    pinned = local_cloud.release_base(f"{family}-1", owner="amazon", ssm_parameter=parameter)
    recipe = published(base=f"{{image_id: {pinned}}}")
    key = build_key(recipe.name, recipe.hash, pinned)

    first = detect({"recipes": [recipe.name]}, env)

    (decision,) = first["decisions"]
    assert (decision["action"], decision["base_ami"], decision["build_key"]) == (
        "build", pinned, key)
    seed(env, {"recipe": recipe.name, "build_id": decision["build_id"], "status": "AVAILABLE",
               "build_key": key, "image_id": "ami-0123456789abcdef0", "created_at": iso(1)})
    # The vendor releases a newer image of the same family: the pin does not follow it.
    newer = local_cloud.release_base(f"{family}-2", owner="amazon", ssm_parameter=parameter)
    assert env.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"] == newer

    again = detect({"recipes": [recipe.name]}, env)

    (decision,) = again["decisions"]
    assert (again["started"], decision["action"], decision["reason"]) == (
        0, "skip", "up to date")
    assert len(executions(env, recipe.name)) == 1


def test_a_pinned_base_that_does_not_exist_starts_nothing_and_says_why(
        env: StepEnv, published: Publish) -> None:
    recipe = published(base="{image_id: ami-00000000000000000}")

    report = detect({"recipes": [recipe.name]}, env)

    (decision,) = report["decisions"]
    assert report["started"] == 0 and decision["action"] == "skip"
    assert "base.image_id ami-00000000000000000 does not exist" in json.dumps(decision)
    assert executions(env, recipe.name) == []
