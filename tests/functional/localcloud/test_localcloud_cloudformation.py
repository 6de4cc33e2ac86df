"""Lambda-backed custom resources through a stack's life: create (Data in the outputs),
update, delete, and a FAILED answer that rolls the stack back."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from amiforge.localcloud.testing import wait_for

RESPONDER = """
import json
import os
import urllib.request


def handler(event, context):
    props = event["ResourceProperties"]
    with open(os.path.join(os.environ["OUT_DIR"], event["RequestId"] + ".json"), "w") as out:
        json.dump(event, out)
    failed = props.get("FailOn") == event["RequestType"]
    body = json.dumps({
        "Status": "FAILED" if failed else "SUCCESS",
        "Reason": "no recipe named " + props["Name"] if failed else "ok",
        "PhysicalResourceId": "thing-" + props["Name"],
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": {"Greeting": "hello " + props["Name"], "Kind": event["ResourceType"]},
    }).encode()
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT",
                                     headers={"Content-Type": ""})
    urllib.request.urlopen(request, timeout=10).read()
"""


def template(function_name: str, out_dir: Path, name: str, fail_on: str = "") -> str:
    return json.dumps({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Role": {"Type": "AWS::IAM::Role", "Properties": {
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole"}]}}},
            "Responder": {"Type": "AWS::Lambda::Function", "Properties": {
                "FunctionName": function_name, "Runtime": "python3.12",
                "Handler": "index.handler", "Timeout": 30,
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                "Environment": {"Variables": {"OUT_DIR": str(out_dir)}},
                "Code": {"ZipFile": RESPONDER}}},
            "Thing": {"Type": "Custom::Thing", "Properties": {
                "ServiceToken": {"Fn::GetAtt": ["Responder", "Arn"]}, "Name": name,
                "FailOn": fail_on}},
        },
        "Outputs": {
            "Greeting": {"Value": {"Fn::GetAtt": ["Thing", "Greeting"]}},
            "Kind": {"Value": {"Fn::GetAtt": ["Thing", "Kind"]}},
        },
    })


@pytest.fixture
def cfn(local_cloud: Any) -> Any:
    return boto3.client("cloudformation")


def settle(cfn: Any, name: str) -> dict:
    def settled() -> dict | None:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        return None if stack["StackStatus"].endswith("IN_PROGRESS") else stack

    return wait_for(settled, timeout=20, interval=0.1, what=f"stack {name}")


def requests_seen(out_dir: Path) -> list[dict]:
    events = [json.loads(p.read_text()) for p in out_dir.glob("*.json")]
    return sorted(events, key=lambda e: ["Create", "Update", "Delete"].index(e["RequestType"]))


def test_custom_resource_create_update_delete(cfn: Any, tmp_path: Path) -> None:
    name = f"custom-{uuid.uuid4().hex[:8]}"

    cfn.create_stack(StackName=name, TemplateBody=template(name, tmp_path, "forge"),
                     Capabilities=["CAPABILITY_IAM"])
    created = settle(cfn, name)
    resource = cfn.describe_stack_resource(StackName=name, LogicalResourceId="Thing")
    cfn.update_stack(StackName=name, TemplateBody=template(name, tmp_path, "anvil"),
                     Capabilities=["CAPABILITY_IAM"])
    updated = settle(cfn, name)
    cfn.delete_stack(StackName=name)
    deleted = cfn.describe_stacks(StackName=created["StackId"])["Stacks"][0]

    assert created["StackStatus"] == "CREATE_COMPLETE"
    outputs = {o["OutputKey"]: o["OutputValue"] for o in created["Outputs"]}
    assert outputs == {"Greeting": "hello forge", "Kind": "Custom::Thing"}
    assert resource["StackResourceDetail"]["PhysicalResourceId"] == "thing-forge"
    assert updated["StackStatus"] == "UPDATE_COMPLETE"
    assert {o["OutputKey"]: o["OutputValue"] for o in updated["Outputs"]}[
        "Greeting"] == "hello anvil"
    assert deleted["StackStatus"] == "DELETE_COMPLETE"
    create, update, delete = requests_seen(tmp_path)
    assert create["RequestType"] == "Create"
    assert update["RequestType"] == "Update"
    assert update["OldResourceProperties"]["Name"] == "forge"
    assert update["ResourceProperties"]["Name"] == "anvil"
    assert update["PhysicalResourceId"] == "thing-forge"
    assert delete["RequestType"] == "Delete"
    assert delete["PhysicalResourceId"] == "thing-anvil"


def test_failed_answer_rolls_the_stack_back_with_its_reason(cfn: Any, tmp_path: Path) -> None:
    name = f"custom-{uuid.uuid4().hex[:8]}"

    cfn.create_stack(StackName=name,
                     TemplateBody=template(name, tmp_path, "ghost", fail_on="Create"),
                     Capabilities=["CAPABILITY_IAM"])
    stack = settle(cfn, name)

    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert "no recipe named ghost" in stack["StackStatusReason"]
    events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    failed = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed[0]["LogicalResourceId"] == "Thing"
    assert failed[0]["ResourceStatusReason"].startswith(
        "Received response status [FAILED] from custom resource. "
        "Message returned: no recipe named ghost")


def test_failed_update_rolls_back_and_keeps_the_old_data(cfn: Any, tmp_path: Path) -> None:
    name = f"custom-{uuid.uuid4().hex[:8]}"
    cfn.create_stack(StackName=name, TemplateBody=template(name, tmp_path, "forge"),
                     Capabilities=["CAPABILITY_IAM"])
    settle(cfn, name)

    cfn.update_stack(StackName=name,
                     TemplateBody=template(name, tmp_path, "ghost", fail_on="Update"),
                     Capabilities=["CAPABILITY_IAM"])
    stack = settle(cfn, name)

    assert stack["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    assert {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}[
        "Greeting"] == "hello forge"


def test_failed_delete_leaves_the_stack_delete_failed(cfn: Any, tmp_path: Path) -> None:
    name = f"custom-{uuid.uuid4().hex[:8]}"
    cfn.create_stack(StackName=name,
                     TemplateBody=template(name, tmp_path, "stuck", fail_on="Delete"),
                     Capabilities=["CAPABILITY_IAM"])
    settle(cfn, name)

    cfn.delete_stack(StackName=name)
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]

    assert stack["StackStatus"] == "DELETE_FAILED"
    assert "no recipe named stuck" in stack["StackStatusReason"]
