"""aws/cloudformation.py on the local cloud: a missing stack is None, an update with
nothing to change is False, stacks are found by name prefix and by parameter; a template
is summarised (defaults, capabilities) and one over the inline limit goes by URL."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from amiforge.aws import artifacts
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


def test_the_template_summary_has_defaults_and_the_capabilities_iam_needs(
        aws: AwsContext) -> None:
    cfn = aws.client("cloudformation")
    body = json.loads(TEMPLATE)
    body["Parameters"]["Size"] = {"Type": "String", "Default": "small"}
    body["Outputs"]["Size"] = {"Value": {"Ref": "Size"}}
    assert cfn_api.template_summary(cfn, json.dumps(body)) == (
        {"Colour": {}, "Size": {"Default": "small"}}, ())
    body["Resources"]["Role"] = {"Type": "AWS::IAM::Role", "Properties": {
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}}}
    assert cfn_api.template_summary(cfn, json.dumps(body))[1] == ("CAPABILITY_IAM",)
    body["Resources"]["Role"]["Properties"]["RoleName"] = "amiforge-build-x"
    assert cfn_api.template_summary(cfn, json.dumps(body))[1] == ("CAPABILITY_NAMED_IAM",)


def test_a_template_over_the_inline_limit_is_taken_only_by_url(
        aws: AwsContext, unique: Callable[[str], str]) -> None:
    """As on AWS: 51,200 bytes of TemplateBody at most; the same template from S3 works."""
    cfn, s3 = aws.client("cloudformation"), aws.client("s3")
    body = json.loads(TEMPLATE)
    body["Metadata"] = {"Notes": "x" * 60_000}
    text = json.dumps(body)
    with pytest.raises(AwsCallFailed, match="less than or equal to 51200"):
        cfn_api.template_summary(cfn, text)
    bucket = unique("templates")
    s3.create_bucket(Bucket=bucket)
    account = aws.client("sts").get_caller_identity()["Account"]
    artifacts.put_object(s3, bucket=bucket, owner=account, key="t.json", data=text.encode())
    url = artifacts.object_url(bucket, aws.resolved_region, "t.json")
    assert url == f"https://{bucket}.s3.{aws.resolved_region}.amazonaws.com/t.json"
    assert cfn_api.template_summary(cfn, template_url=url) == ({"Colour": {}}, ())
    name = unique("amiforge-cfn-url")
    cfn_api.create(cfn, name=name, template_url=url, parameters={"Colour": "red"}, tags={},
                   role_arn=None, client_token=name)
    assert cfn_api.describe(cfn, name)["StackStatus"] == "CREATE_COMPLETE"
    assert cfn_api.delete(cfn, name) is True
