"""The local cloud's CloudFormation as AWS documents it for consumer stacks (localcloud/fills/cloudformation):
SSM parameter types, updates that follow resolved values, instances that honour
MetadataOptions and are replaced when their image changes, and creation that waits for a
custom resource's answer."""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from amiforge.localcloud.fills.cloudformation import resources as cfn_resources
from amiforge.localcloud.testing import wait_for

IMDSV2 = {"HttpTokens": "required", "HttpEndpoint": "enabled"}

# Answers after a short pause (so dependants must wait), echoing its ImageId property.
RESPONDER = """
import json
import time
import urllib.request


def handler(event, context):
    time.sleep(0.3)
    props = event["ResourceProperties"]
    body = json.dumps({
        "Status": "SUCCESS", "Reason": "ok", "PhysicalResourceId": props["ImageId"],
        "StackId": event["StackId"], "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": {"ImageId": props["ImageId"]},
    }).encode()
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT",
                                     headers={"Content-Type": ""})
    urllib.request.urlopen(request, timeout=10).read()
"""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ssm_template(default: str, tag: dict | None = None) -> str:
    instance: dict[str, Any] = {"ImageId": {"Ref": "ImageId"}, "InstanceType": "t3.micro",
                                "MetadataOptions": IMDSV2}
    if tag:
        instance["Tags"] = [{"Key": k, "Value": v} for k, v in tag.items()]
    return json.dumps({
        "Parameters": {
            "ImageId": {"Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
                        "Default": default},
            "Team": {"Type": "String", "Default": "web"}},
        "Resources": {"Instance": {"Type": "AWS::EC2::Instance", "Properties": instance}},
        "Outputs": {"ImageId": {"Value": {"Ref": "ImageId"}}},
    })


@pytest.fixture
def clients(local_cloud: Any) -> dict[str, Any]:
    return {name: boto3.client(name) for name in ("cloudformation", "ec2", "ssm")}


@pytest.fixture
def images(local_cloud: Any) -> list[str]:
    return [local_cloud.release_base(name=unique("consumer-base"), owner="self")
            for _ in range(2)]


def settle(cfn: Any, stack_id: str) -> dict:
    def settled() -> dict | None:
        stack = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
        return None if stack["StackStatus"].endswith("IN_PROGRESS") else stack

    return wait_for(settled, timeout=30, interval=0.1, what=f"stack {stack_id}")


def instance(clients: dict, stack_id: str) -> dict:
    physical = clients["cloudformation"].describe_stack_resource(
        StackName=stack_id, LogicalResourceId="Instance")["StackResourceDetail"]
    return described(clients, physical["PhysicalResourceId"])


def described(clients: dict, instance_id: str) -> dict:
    return clients["ec2"].describe_instances(
        InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def put(clients: dict, name: str, image: str) -> None:
    clients["ssm"].put_parameter(Name=name, Value=image, Type="String",
                                 DataType="aws:ec2:image", Overwrite=True)


def keep_all() -> list[dict]:
    return [{"ParameterKey": k, "UsePreviousValue": True} for k in ("ImageId", "Team")]


def test_ssm_parameter_is_shown_by_name_and_resolved_value(clients: dict,
                                                           images: list[str]) -> None:
    name = f"/{unique('app')}/latest"
    put(clients, name, images[0])
    cfn = clients["cloudformation"]

    stack_id = cfn.create_stack(StackName=unique("ssm"), TemplateBody=ssm_template(name))["StackId"]
    created = settle(cfn, stack_id)

    assert created["StackStatus"] == "CREATE_COMPLETE"
    shown = {p["ParameterKey"]: p for p in created["Parameters"]}
    assert shown["ImageId"] == {"ParameterKey": "ImageId", "ParameterValue": name,
                                "ResolvedValue": images[0]}
    assert shown["Team"] == {"ParameterKey": "Team", "ParameterValue": "web"}
    launched = instance(clients, stack_id)
    assert launched["ImageId"] == images[0]
    assert launched["MetadataOptions"]["HttpTokens"] == "required"


def test_update_moves_to_the_new_ssm_value_replacing_the_instance(clients: dict,
                                                                  images: list[str]) -> None:
    name = f"/{unique('app')}/latest"
    put(clients, name, images[0])
    cfn = clients["cloudformation"]
    stack_id = cfn.create_stack(StackName=unique("ssm"), TemplateBody=ssm_template(name))["StackId"]
    first = instance(clients, settle(cfn, stack_id)["StackId"])

    with pytest.raises(ClientError, match="No updates are to be performed"):
        cfn.update_stack(StackName=stack_id, UsePreviousTemplate=True, Parameters=keep_all())
    put(clients, name, images[1])
    cfn.update_stack(StackName=stack_id, UsePreviousTemplate=True, Parameters=keep_all())
    updated = settle(cfn, stack_id)

    assert updated["StackStatus"] == "UPDATE_COMPLETE"
    second = instance(clients, stack_id)
    assert second["InstanceId"] != first["InstanceId"]
    assert second["ImageId"] == images[1]
    assert second["MetadataOptions"]["HttpTokens"] == "required"
    tags = {t["Key"]: t["Value"] for t in second["Tags"]}
    assert tags["aws:cloudformation:logical-id"] == "Instance"
    assert tags["aws:cloudformation:stack-id"] == stack_id
    assert described(clients, first["InstanceId"])["State"]["Name"] == "terminated"
    assert {o["OutputKey"]: o["OutputValue"] for o in updated["Outputs"]} == {
        "ImageId": images[1]}
    assert [p["ParameterValue"] for p in updated["Parameters"]
            if p["ParameterKey"] == "ImageId"] == [name]


def test_an_in_place_change_keeps_the_instance(clients: dict, images: list[str]) -> None:
    name = f"/{unique('app')}/latest"
    put(clients, name, images[0])
    cfn = clients["cloudformation"]
    stack_id = cfn.create_stack(StackName=unique("ssm"),
                                TemplateBody=ssm_template(name, {"team": "web"}))["StackId"]
    first = instance(clients, settle(cfn, stack_id)["StackId"])

    cfn.update_stack(StackName=stack_id, TemplateBody=ssm_template(name, {"owner": "ops"}))
    settle(cfn, stack_id)

    same = instance(clients, stack_id)
    assert same["InstanceId"] == first["InstanceId"]
    tags = {t["Key"]: t["Value"] for t in same["Tags"]}
    assert tags["owner"] == "ops" and "team" not in tags


def test_a_missing_ssm_parameter_is_refused_and_an_unused_default_need_not_exist(
        clients: dict, images: list[str]) -> None:
    cfn = clients["cloudformation"]
    missing = f"/{unique('nothing')}/latest"
    with pytest.raises(ClientError) as refused:
        cfn.create_stack(StackName=unique("ssm"), TemplateBody=ssm_template(missing))
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert missing in refused.value.response["Error"]["Message"]

    given = f"/{unique('app')}/latest"
    put(clients, given, images[0])
    stack_id = cfn.create_stack(StackName=unique("ssm"), TemplateBody=ssm_template(missing),
                                Parameters=[{"ParameterKey": "ImageId",
                                             "ParameterValue": given}])["StackId"]
    assert settle(cfn, stack_id)["StackStatus"] == "CREATE_COMPLETE"
    assert instance(clients, stack_id)["ImageId"] == images[0]


def custom_template(function_name: str) -> str:
    return json.dumps({
        "Parameters": {"Image": {"Type": "String"}},
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole"}]}}},
            "Responder": {"Type": "AWS::Lambda::Function", "Properties": {
                "FunctionName": function_name, "Runtime": "python3.12",
                "Handler": "index.handler", "Timeout": 30,
                "Role": {"Fn::GetAtt": ["Role", "Arn"]}, "Code": {"ZipFile": RESPONDER}}},
            "Latest": {"Type": "Custom::Latest", "Properties": {
                "ServiceToken": {"Fn::GetAtt": ["Responder", "Arn"]},
                "ImageId": {"Ref": "Image"}}},
            "Instance": {"Type": "AWS::EC2::Instance", "Properties": {
                "ImageId": {"Fn::GetAtt": ["Latest", "ImageId"]}, "InstanceType": "t3.micro",
                "MetadataOptions": IMDSV2}},
        },
    })


def test_dependants_of_a_custom_resource_wait_for_it_and_follow_its_updates(
        clients: dict, images: list[str]) -> None:
    cfn = clients["cloudformation"]
    name = unique("custom")
    stack_id = cfn.create_stack(
        StackName=name, TemplateBody=custom_template(name), Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": "Image", "ParameterValue": images[0]}])["StackId"]

    created = settle(cfn, stack_id)
    assert created["StackStatus"] == "CREATE_COMPLETE", created
    first = instance(clients, stack_id)
    assert first["ImageId"] == images[0]

    cfn.update_stack(StackName=stack_id, UsePreviousTemplate=True, Capabilities=["CAPABILITY_IAM"],
                     Parameters=[{"ParameterKey": "Image", "ParameterValue": images[1]}])
    assert settle(cfn, stack_id)["StackStatus"] == "UPDATE_COMPLETE"
    second = instance(clients, stack_id)
    assert second["ImageId"] == images[1]
    assert described(clients, first["InstanceId"])["State"]["Name"] == "terminated"

    cfn.delete_stack(StackName=stack_id)
    assert settle(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    assert described(clients, second["InstanceId"])["State"]["Name"] == "terminated"


def test_dependency_order_follows_refs_getatts_subs_and_depends_on() -> None:
    resources = {
        "Instance": {"Properties": {"ImageId": {"Fn::GetAtt": "Latest.ImageId"},
                                    "Name": {"Fn::Sub": "${Prefix}-${Latest.BuildId}"}}},
        "Latest": {"Properties": {"ServiceToken": {"Ref": "Function"}}},
        "Function": {"DependsOn": "Role", "Properties": {}},
        "Role": {"Properties": {"Literal": {"Fn::Sub": "${!NotARef}"}}},
        "Prefix": {"Properties": {}},
    }
    order = cfn_resources.dependency_order(resources)
    assert order.index("Role") < order.index("Function") < order.index("Latest") < \
        order.index("Instance")
    assert order.index("Prefix") < order.index("Instance")
    assert cfn_resources.references(resources["Role"]) == set()


def test_a_stack_whose_export_is_imported_cannot_be_deleted(clients: dict) -> None:
    cfn = clients["cloudformation"]
    exporter = unique("exporter")
    export = f"{exporter}-topic"
    importer = unique("importer")
    cfn.create_stack(StackName=exporter, TemplateBody=json.dumps({
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"Arn": {"Value": {"Ref": "Topic"}, "Export": {"Name": export}}}}))
    settle(cfn, exporter)
    cfn.create_stack(StackName=importer, TemplateBody=json.dumps({
        "Parameters": {"Exporter": {"Type": "String", "Default": exporter}},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"Tags": [
            {"Key": "topic",
             "Value": {"Fn::ImportValue": {"Fn::Sub": "${Exporter}-topic"}}}]}}}}))
    settle(cfn, importer)

    cfn.delete_stack(StackName=exporter)
    stack = settle(cfn, exporter)
    assert stack["StackStatus"] == "DELETE_FAILED"
    reasons = [e.get("ResourceStatusReason", "") for e in
               cfn.describe_stack_events(StackName=exporter)["StackEvents"]]
    assert f"Export {export} cannot be deleted as it is in use by {importer}" in reasons
    assert export in {e["Name"] for e in cfn.list_exports()["Exports"]}

    cfn.delete_stack(StackName=importer)  # once nothing imports it, it goes
    cfn.delete_stack(StackName=exporter)
    assert export not in {e["Name"] for e in cfn.list_exports()["Exports"]}


def test_a_resource_looked_up_by_two_threads_at_once_is_created_once() -> None:
    # moto creates a resource on its first lookup; creation resuming on a custom
    # resource's answer and DescribeStacks reading the outputs can look it up together.
    created: list[str] = []
    both_in = threading.Barrier(2, timeout=5)

    class Map:  # what the fill sees of moto's ResourceMap
        _waiting: list[str] = []
        _parsed_resources: dict[str, str] = {}

    def moto_getitem(self: Map, key: str) -> str:  # moto's: create unless parsed already
        if key in self._parsed_resources:
            return self._parsed_resources[key]
        time.sleep(0.2)  # creating: the other thread looks it up meanwhile
        created.append(key)
        self._parsed_resources[key] = f"i-{len(created)}"
        return self._parsed_resources[key]

    getitem = cfn_resources.wrap_getitem(moto_getitem)
    resource_map = Map()

    def look_up(_: int) -> str:
        both_in.wait()
        return str(getitem(resource_map, "Instance"))

    with ThreadPoolExecutor(2) as pool:
        found = list(pool.map(look_up, range(2)))
    assert created == ["Instance"]
    assert found == ["i-1", "i-1"]
