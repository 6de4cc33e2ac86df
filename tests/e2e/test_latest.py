"""`latest` is right (issue 15): two overlapping builds of one recipe, the older version's
finishing last, leave the SSM parameter, `amiforge latest` and Custom::LatestAmi agreeing
on the published version's image; a Register that fails after moving the parameter
leaves `latest` on the previous image."""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import pytest
from tests.helpers import unique

from amiforge.aws import ssm as ssm_api
from amiforge.localcloud.testing import images_of_build, wait_for
from amiforge.ops.builds import wait_for_builds
from amiforge.steps.finish import record_failure
from amiforge.steps.register import register

pytestmark = pytest.mark.e2e

STACK = "amiforge-e2e"
CONSUMER = """
Parameters:
  Recipe: {Type: String}
Resources:
  Latest:
    Type: Custom::LatestAmi
    Properties:
      ServiceToken: {"Fn::ImportValue": "STACK-LatestAmiServiceToken"}
      Recipe: {Ref: Recipe}
Outputs:
  ImageId: {Value: {"Fn::GetAtt": [Latest, ImageId]}}
  BuildId: {Value: {"Fn::GetAtt": [Latest, BuildId]}}
""".replace("STACK", STACK)


def publish(amiforge: Any, directory: Any, name: str) -> str:
    result = amiforge("publish", str(directory), output="json")
    assert result.exit_code == 0, result.output
    (published,) = [p for p in json.loads(result.stdout)["recipes"] if p["recipe"] == name]
    assert published["build_started"], published
    return published["build_started"]


def custom_resource_answer(aws: Any, recipe: str) -> dict[str, str]:
    cfn = aws.client("cloudformation")
    stack_id = cfn.create_stack(StackName=unique("latest-consumer"), TemplateBody=CONSUMER,
                                Parameters=[{"ParameterKey": "Recipe",
                                             "ParameterValue": recipe}])["StackId"]

    def settled() -> dict | None:
        found = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
        return None if found["StackStatus"].endswith("IN_PROGRESS") else found

    created = wait_for(settled, timeout=60, interval=0.1, what="consumer stack")
    assert created["StackStatus"] == "CREATE_COMPLETE", created
    return {o["OutputKey"]: o["OutputValue"] for o in created["Outputs"]}


def test_a_superseded_build_finishing_last_does_not_take_latest(
        amiforge: Any, aws: Any, stack: Any, recipe_dir: Any) -> None:
    name = unique("overlap")
    slow = publish(amiforge, recipe_dir(name, "# amiforge-sim: slow 20\necho v1\n"), name)
    fast = publish(amiforge, recipe_dir(name, "echo v2\n"), name)
    assert slow != fast
    records = {r["build_id"]: r for r in wait_for_builds(
        stack, [{"recipe": name, "build_id": slow}, {"recipe": name, "build_id": fast}],
        poll=0.2, timeout=180)}
    assert {r["status"] for r in records.values()} == {"AVAILABLE"}, records
    # The overlap really happened: both ran at once, the superseded build finished last.
    old, new = stack.catalog.get(name, slow), stack.catalog.get(name, fast)
    assert old["created_at"] < new["finished_at"] < old["finished_at"], (old, new)

    image = new["image_id"]
    assert ssm_api.get_value(aws.client("ssm"), f"/amiforge/{name}/latest") == image
    assert amiforge("latest", name).stdout.strip() == image
    assert custom_resource_answer(aws, name) == {"ImageId": image, "BuildId": fast}
    status = json.loads(amiforge("status", output="json").stdout)["recipes"]
    assert [s["latest_image"] for s in status if s["recipe"] == name] == [image]


def test_a_register_that_fails_after_moving_latest_puts_it_back(
        amiforge: Any, aws: Any, stack: Any, recipe_dir: Any) -> None:
    name = unique("regfail")
    first = publish(amiforge, recipe_dir(name, "echo one\n"), name)
    (done,) = wait_for_builds(stack, [{"recipe": name, "build_id": first}], poll=0.2,
                              timeout=120)
    assert done["status"] == "AVAILABLE", done
    previous = done["image_id"]

    # A second build, imaged by hand up to Register: its state is what the state machine
    # hands Register, and the one fault is the last call Register makes (SNS: no topic).
    second = f"{name}-manual-{uuid.uuid4().hex[:6]}"
    record = {**stack.catalog.get(name, first), "build_id": second}
    for key in ("status", "available_recipe", "image_id", "images", "finished_at",
                "created_at"):
        record.pop(key, None)
    assert stack.catalog.start(record)
    ec2 = aws.client("ec2")
    base = ec2.describe_images(ImageIds=[previous])["Images"][0]
    image_id = ec2.register_image(Name=f"{second}-image", RootDeviceName="/dev/xvda",
                                  BlockDeviceMappings=base["BlockDeviceMappings"],
                                  TagSpecifications=[{"ResourceType": "image", "Tags": [
                                      {"Key": "amiforge:recipe", "Value": name},
                                      {"Key": "amiforge:build-id", "Value": second}]}])["ImageId"]
    state = {"build": {"recipe": name, "build_id": second, "recipe_hash": record["recipe_hash"],
                       "share_with": []},
             "image": {"image_id": image_id, "name": f"{second}-image", "snapshot_ids": []}}
    broken = dataclasses.replace(stack,
                                 topic_arn="arn:aws:sns:us-east-1:123456789012:no-such-topic")
    parameter = f"/amiforge/{name}/latest"
    with pytest.raises(Exception) as failed:
        register(state, broken)
    assert getattr(failed.value, "code", "") == "NotFound", failed.value

    assert ssm_api.get_value(aws.client("ssm"), parameter) == previous
    assert stack.catalog.get(name, second)["status"] == "BUILDING"
    assert amiforge("latest", name).stdout.strip() == previous

    # The failure path then records it FAILED and removes its image: latest never named it.
    record_failure({**state, "error": {"Error": "AwsCallFailed", "Cause": str(failed.value)}},
                   stack)
    assert stack.catalog.get(name, second)["status"] == "FAILED"
    assert ssm_api.get_value(aws.client("ssm"), parameter) == previous
    assert amiforge("latest", name).stdout.strip() == previous
    assert custom_resource_answer(aws, name)["ImageId"] == previous


def test_a_register_killed_on_every_attempt_leaves_latest_on_the_previous_image(
        amiforge: Any, aws: Any, stack: Any, recipe_dir: Any, local_cloud: Any) -> None:
    """Through the deployed stack: Register dies right after its first state-changing
    call (the catalog write) on every attempt, so it can neither finish nor undo; the
    failure path undoes it, and every reader still answers the previous image."""
    name = unique("regkill")
    (done,) = wait_for_builds(stack, [{"recipe": name, "build_id": publish(
        amiforge, recipe_dir(name, "echo one\n"), name)}], poll=0.2, timeout=120)
    assert done["status"] == "AVAILABLE", done
    previous = done["image_id"]
    crashed = local_cloud.faults.stats()["crashes"]["by_function"].get(f"{STACK}-register", 0)
    before = local_cloud.faults.configure(crash_rate=1.0,
                                          crash_functions=[f"{STACK}-register"])
    # Register's six Transient retries back off for about a minute on AWS; the local
    # cloud makes every attempt with a twentieth of each wait.
    local_cloud.retry_scale = 0.05
    try:
        second = publish(amiforge, recipe_dir(name, "echo two\n"), name)
        (failed,) = wait_for_builds(stack, [{"recipe": name, "build_id": second}], poll=0.5,
                                    timeout=300)
    finally:
        local_cloud.retry_scale = 1.0
        local_cloud.faults.configure(crash_rate=before["crash_rate"],
                                     crash_functions=before["crash_functions"])
    assert failed["status"] == "FAILED", failed
    assert "Runtime.ExitError" in failed["reason"]
    # every attempt was made: the first and its six retries
    assert local_cloud.faults.stats()["crashes"]["by_function"][f"{STACK}-register"] \
        - crashed == 7
    assert ssm_api.get_value(aws.client("ssm"), f"/amiforge/{name}/latest") == previous
    assert amiforge("latest", name).stdout.strip() == previous
    assert custom_resource_answer(aws, name)["ImageId"] == previous
    assert images_of_build(aws.client("ec2"), second) == []


def test_publishing_content_built_before_moves_every_reader_back_together(
        amiforge: Any, aws: Any, stack: Any, recipe_dir: Any) -> None:
    name = unique("revert")
    first = wait_for_builds(stack, [{"recipe": name, "build_id": publish(
        amiforge, recipe_dir(name, "echo one\n"), name)}], poll=0.2, timeout=120)[0]
    second = wait_for_builds(stack, [{"recipe": name, "build_id": publish(
        amiforge, recipe_dir(name, "echo two\n"), name)}], poll=0.2, timeout=120)[0]
    assert {first["status"], second["status"]} == {"AVAILABLE"}
    parameter = f"/amiforge/{name}/latest"
    assert ssm_api.get_value(aws.client("ssm"), parameter) == second["image_id"]

    reverted = amiforge("publish", "--no-detect", str(recipe_dir(name, "echo one\n")))
    assert reverted.exit_code == 0, reverted.output
    assert ssm_api.get_value(aws.client("ssm"), parameter) == first["image_id"]
    assert amiforge("latest", name).stdout.strip() == first["image_id"]
    assert custom_resource_answer(aws, name)["ImageId"] == first["image_id"]
