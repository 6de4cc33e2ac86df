"""Issue 6 journeys: consumer stacks launch from the newest image, follow rebuilds, and
never touch amiforge's images; a consumer of an unknown recipe fails naming it.

The consumer templates are the examples in examples/consumers, deployed as they are
into the local cloud next to the e2e stack (whose export is
``amiforge-e2e-LatestAmiServiceToken``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cfnlint.decode.cfn_yaml import loads
from tests.helpers import unique

from amiforge.localcloud.testing import wait_for
from amiforge.ops.builds import wait_for_builds

pytestmark = pytest.mark.e2e

STACK = "amiforge-e2e"  # the stack the e2e conftest deploys
CONSUMERS = Path(__file__).resolve().parents[2] / "examples" / "consumers"
CUSTOM_RESOURCE = CONSUMERS / "launch-from-custom-resource.yaml"
SSM_PARAMETER = CONSUMERS / "launch-from-ssm-parameter.yaml"


def build(amiforge: Any, stack: Any, recipe_dir: Any, name: str, script: str) -> str:
    """Publish recipe ``name`` with ``script``, wait for the build it starts; its image."""
    result = amiforge("publish", str(recipe_dir(name, script)), output="json")
    assert result.exit_code == 0, result.output
    (published,) = [p for p in json.loads(result.stdout)["recipes"] if p["recipe"] == name]
    assert published["build_started"], published
    (record,) = wait_for_builds(stack, [{"recipe": name, "build_id": published["build_started"]}],
                                poll=0.2, timeout=120)
    assert record["status"] == "AVAILABLE", record
    latest = amiforge("latest", name)
    assert latest.exit_code == 0, latest.output
    assert latest.stdout.strip() == record["image_id"]
    return record["image_id"]


def settle(cfn: Any, stack_id: str) -> dict:
    def settled() -> dict | None:
        found = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
        return None if found["StackStatus"].endswith("IN_PROGRESS") else found

    return wait_for(settled, timeout=60, interval=0.1, what=f"stack {stack_id}")


def create(cfn: Any, name: str, template: Path, **parameters: str) -> dict:
    stack_id = cfn.create_stack(
        StackName=name, TemplateBody=template.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )["StackId"]
    return settle(cfn, stack_id)


def update(cfn: Any, created: dict, template: Path, **changes: str) -> dict:
    """Update with the same template, every parameter as before except ``changes``."""
    keys = loads(template.read_text())["Parameters"]
    cfn.update_stack(StackName=created["StackId"], UsePreviousTemplate=True, Parameters=[
        {"ParameterKey": k, "ParameterValue": changes[k]} if k in changes
        else {"ParameterKey": k, "UsePreviousValue": True} for k in keys])
    return settle(cfn, created["StackId"])


def instance_of(aws: Any, stack_id: str) -> dict:
    physical = aws.client("cloudformation").describe_stack_resource(
        StackName=stack_id, LogicalResourceId="Instance")["StackResourceDetail"]
    return described_instance(aws, physical["PhysicalResourceId"])


def described_instance(aws: Any, instance_id: str) -> dict:
    reservations = aws.client("ec2").describe_instances(InstanceIds=[instance_id])
    return reservations["Reservations"][0]["Instances"][0]


def outputs(stack: dict) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def delete(cfn: Any, created: dict) -> dict:
    cfn.delete_stack(StackName=created["StackId"])
    return settle(cfn, created["StackId"])


def assert_available(aws: Any, *image_ids: str) -> None:
    images = aws.client("ec2").describe_images(ImageIds=list(image_ids))["Images"]
    assert {i["ImageId"]: i["State"] for i in images} == dict.fromkeys(image_ids, "available")


def test_custom_resource_consumer_launches_the_newest_image_and_follows_a_rebuild(
        amiforge: Any, aws: Any, stack: Any, recipe_dir: Any) -> None:
    cfn = aws.client("cloudformation")
    recipe = unique("cr-consumer")
    first = build(amiforge, stack, recipe_dir, recipe, "echo v1\n")

    created = create(cfn, unique("consumer-cr"), CUSTOM_RESOURCE, AmiforgeStack=STACK,
                     Recipe=recipe)
    assert created["StackStatus"] == "CREATE_COMPLETE", created
    instance = instance_of(aws, created["StackId"])
    assert instance["ImageId"] == first
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    newest = stack.catalog.latest(recipe)
    assert outputs(created) == {
        "InstanceId": instance["InstanceId"], "ImageId": first,
        "ImageName": newest["image_name"], "BuildId": newest["build_id"],
        "CreationDate": newest["created_at"]}
    latest = cfn.describe_stack_resource(StackName=created["StackId"],
                                         LogicalResourceId="Latest")["StackResourceDetail"]
    assert latest["PhysicalResourceId"] == first

    second = build(amiforge, stack, recipe_dir, recipe, "echo v2\n")
    assert second != first
    updated = update(cfn, created, CUSTOM_RESOURCE, RefreshToken="2")
    assert updated["StackStatus"] == "UPDATE_COMPLETE", updated
    replacement = instance_of(aws, created["StackId"])
    assert replacement["ImageId"] == second
    assert replacement["MetadataOptions"]["HttpTokens"] == "required"
    assert outputs(updated)["ImageId"] == second
    assert described_instance(aws, instance["InstanceId"])["State"]["Name"] == "terminated"

    deleted = delete(cfn, created)
    assert deleted["StackStatus"] == "DELETE_COMPLETE"
    assert_available(aws, first, second)
    assert amiforge("latest", recipe).stdout.strip() == second


def test_ssm_parameter_consumer_launches_the_newest_image_and_follows_a_rebuild(
        amiforge: Any, aws: Any, stack: Any, recipe_dir: Any) -> None:
    cfn = aws.client("cloudformation")
    recipe = unique("ssm-consumer")
    parameter = f"/amiforge/{recipe}/latest"
    first = build(amiforge, stack, recipe_dir, recipe, "echo v1\n")

    created = create(cfn, unique("consumer-ssm"), SSM_PARAMETER, ImageId=parameter)
    assert created["StackStatus"] == "CREATE_COMPLETE", created
    instance = instance_of(aws, created["StackId"])
    assert instance["ImageId"] == first
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    (shown,) = [p for p in created["Parameters"] if p["ParameterKey"] == "ImageId"]
    assert (shown["ParameterValue"], shown["ResolvedValue"]) == (parameter, first)

    second = build(amiforge, stack, recipe_dir, recipe, "echo v2\n")
    assert second != first
    # Nothing of the consumer's changes: CloudFormation resolves the parameter again.
    updated = update(cfn, created, SSM_PARAMETER)
    assert updated["StackStatus"] == "UPDATE_COMPLETE", updated
    assert instance_of(aws, created["StackId"])["ImageId"] == second
    assert outputs(updated)["ImageId"] == second
    assert described_instance(aws, instance["InstanceId"])["State"]["Name"] == "terminated"

    deleted = delete(cfn, created)
    assert deleted["StackStatus"] == "DELETE_COMPLETE"
    assert_available(aws, first, second)
    value = aws.client("ssm").get_parameter(Name=parameter)["Parameter"]
    assert (value["Value"], value["DataType"]) == (second, "aws:ec2:image")


def test_a_consumer_of_an_unknown_recipe_fails_naming_it(aws: Any, stack: Any) -> None:
    cfn = aws.client("cloudformation")
    recipe = unique("no-such-recipe")

    created = create(cfn, unique("consumer-ghost"), CUSTOM_RESOURCE, AmiforgeStack=STACK,
                     Recipe=recipe)

    assert created["StackStatus"] == "ROLLBACK_COMPLETE"
    events = cfn.describe_stack_events(StackName=created["StackId"])["StackEvents"]
    (failed,) = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed["LogicalResourceId"] == "Latest"
    assert failed["ResourceStatusReason"].startswith(
        "Received response status [FAILED] from custom resource. Message returned: "
        f"recipe '{recipe}' has no AVAILABLE image")
    # Nothing that depends on the image was created.
    reservations = aws.client("ec2").describe_instances(Filters=[
        {"Name": "tag:aws:cloudformation:stack-id", "Values": [created["StackId"]]}])
    assert reservations["Reservations"] == []


def test_an_ssm_consumer_of_an_unknown_recipe_is_refused_naming_it(aws: Any,
                                                                   stack: Any) -> None:
    cfn = aws.client("cloudformation")
    parameter = f"/amiforge/{unique('no-such-recipe')}/latest"

    with pytest.raises(ClientError) as refused:
        cfn.create_stack(StackName=unique("consumer-ghost"), TemplateBody=SSM_PARAMETER.read_text(),
                         Parameters=[{"ParameterKey": "ImageId", "ParameterValue": parameter}])

    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert refused.value.response["Error"]["Message"] == (
        f"Unable to fetch parameters [{parameter}] from parameter store for this account.")
