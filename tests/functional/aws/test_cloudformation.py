"""aws/cloudformation.py on the local cloud: a missing stack is None, an update with
nothing to change is False, stacks are found by name prefix and by parameter."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from amiforge.aws import cloudformation as cfn_api
from amiforge.aws.session import AwsContext
from amiforge.errors import AwsCallFailed

TEMPLATE = json.dumps({
    "Parameters": {"Colour": {"Type": "String"}},
    "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
    "Outputs": {"Colour": {"Value": {"Ref": "Colour"}}}})


def test_a_stack_is_created_described_found_and_deleted(
        aws: AwsContext, unique: Callable[[str], str]) -> None:
    cfn = aws.client("cloudformation")
    prefix = unique("amiforge-cfn")
    name = f"{prefix}-one"
    assert cfn_api.describe(cfn, name) is None
    stack_id = cfn_api.create_stack(cfn, {
        "StackName": name, "TemplateBody": TEMPLATE,
        "Parameters": [{"ParameterKey": "Colour", "ParameterValue": "blue"}],
        "Tags": [{"Key": "amiforge:stack", "Value": "t"}]})
    described = cfn_api.describe(cfn, name)
    assert described is not None and described["StackId"] == stack_id
    assert [s["StackName"] for s in cfn_api.stacks_named(cfn, prefix)] == [name]
    assert cfn_api.stacks_with_parameter(cfn, "Colour", "blue") == [name]
    assert cfn_api.declared_parameters(cfn, TEMPLATE) == {"Colour"}
    # The same template and parameters: CloudFormation has nothing to do, which is fine.
    assert cfn_api.update_stack(cfn, {
        "StackName": name, "TemplateBody": TEMPLATE,
        "Parameters": [{"ParameterKey": "Colour", "ParameterValue": "blue"}]}) is False
    assert cfn_api.failure_reasons(cfn, name) == []
    assert cfn_api.delete(cfn, name) is True
    assert cfn_api.stacks_named(cfn, prefix) == []


def test_deleting_a_missing_stack_is_false(aws: AwsContext) -> None:
    assert cfn_api.delete(aws.client("cloudformation"), "amiforge-never-made") is False


def test_a_bad_template_is_an_error_naming_the_operation(aws: AwsContext) -> None:
    with pytest.raises(AwsCallFailed) as caught:
        cfn_api.declared_parameters(aws.client("cloudformation"), "{not json")
    assert caught.value.operation == "ValidateTemplate"
