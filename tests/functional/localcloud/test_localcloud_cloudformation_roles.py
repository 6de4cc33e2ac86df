"""A stack's ``AWS::IAM::Role`` as IAM shows it (localcloud/fills/cloudformation/
roles.py): managed policies attached, inline policies as JSON, both brought to the
template's on update, detached when the stack goes."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
from botocore.exceptions import ClientError

from amiforge.localcloud.testing import wait_for

TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"},
    "Action": "sts:AssumeRole"}]}


def document(action: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": action, "Resource": "*"}]}


def template(managed: list[str], inline: dict[str, str]) -> str:
    policies = {f"Policy{i}": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
        "PolicyDocument": document(action)}} for i, action in enumerate(
            ["sqs:GetQueueUrl", "sns:ListTopics"])}
    return json.dumps({"Resources": {**policies, "Role": {
        "Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": TRUST,
            "ManagedPolicyArns": [{"Ref": name} for name in managed],
            "Policies": [{"PolicyName": n, "PolicyDocument": document(a)}
                         for n, a in inline.items()]}}},
        "Outputs": {"Role": {"Value": {"Ref": "Role"}},
                    **{n: {"Value": {"Ref": n}} for n in policies}}})


def settle(cfn: Any, name: str) -> dict:
    def settled() -> dict | None:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        return None if stack["StackStatus"].endswith("IN_PROGRESS") else stack

    return wait_for(settled, timeout=30, interval=0.1, what=name)


def shown(iam: Any, role: str) -> tuple[list[str], dict[str, Any]]:
    attached = [p["PolicyArn"] for p in
                iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]]
    inline = {}
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        text = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        inline[name] = json.loads(text) if isinstance(text, str) else text
    return attached, inline


def test_a_roles_policies_follow_its_template(local_cloud: Any) -> None:
    cfn, iam = boto3.client("cloudformation"), boto3.client("iam")
    name = f"roles-{uuid.uuid4().hex[:8]}"
    stack_id = cfn.create_stack(StackName=name, TemplateBody=template(
        ["Policy0"], {"logs": "logs:*"}))["StackId"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in settle(cfn, stack_id)["Outputs"]}
    assert shown(iam, outputs["Role"]) == ([outputs["Policy0"]], {"logs": document("logs:*")})

    cfn.update_stack(StackName=name, TemplateBody=template(["Policy1"], {"pull": "s3:*"}))
    assert settle(cfn, stack_id)["StackStatus"] == "UPDATE_COMPLETE"
    assert shown(iam, outputs["Role"]) == ([outputs["Policy1"]], {"pull": document("s3:*")})

    cfn.delete_stack(StackName=name)
    assert settle(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    try:
        iam.get_role(RoleName=outputs["Role"])
    except ClientError as error:
        assert error.response["Error"]["Code"] == "NoSuchEntity"
    else:
        raise AssertionError("the role outlived its stack")
