"""Resource types moto's CloudFormation lacks, in a local-cloud stack
(localcloud/fills/cloudformation/missing_types.py): ``AWS::CodeBuild::Project`` created
in CodeBuild with what the template said, named by ``!GetAtt`` and ``!Ref``, replaced on
update, deleted with the stack; ``AWS::IAM::OIDCProvider`` made in IAM, ``!Ref`` its ARN."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest

from amiforge.localcloud.fills.cloudformation.codebuild import api_shape
from amiforge.localcloud.testing import wait_for

BUILDSPEC = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo one\n"


def template(project: str, buildspec: str = BUILDSPEC) -> str:
    return json.dumps({
        "Resources": {
            "Project": {"Type": "AWS::CodeBuild::Project", "Properties": {
                "Name": project,
                "ServiceRole": "arn:aws:iam::123456789012:role/publisher",
                "Artifacts": {"Type": "NO_ARTIFACTS"},
                "Environment": {
                    "Type": "LINUX_CONTAINER", "ComputeType": "BUILD_GENERAL1_SMALL",
                    "Image": "aws/codebuild/amazonlinux-x86_64-standard:5.0",
                    "EnvironmentVariables": [
                        {"Name": "AMIFORGE_STACK", "Type": "PLAINTEXT", "Value": "s"}]},
                "Source": {"Type": "GITHUB", "Location": "https://github.com/o/r.git",
                           "BuildSpec": buildspec, "GitCloneDepth": 1,
                           "Auth": {"Type": "CODECONNECTIONS",
                                    "Resource": "arn:aws:codeconnections:us-east-1:"
                                                "123456789012:connection/abc"}},
                "SourceVersion": "refs/heads/main",
                "Triggers": {"Webhook": True, "FilterGroups": [[
                    {"Type": "EVENT", "Pattern": "PUSH"},
                    {"Type": "HEAD_REF", "Pattern": "^refs/heads/main$"}]]},
                "Tags": [{"Key": "amiforge:stack", "Value": "s"}]}},
            # Something naming the project's ARN, as the git trigger's rule does.
            "Rule": {"Type": "AWS::Events::Rule", "Properties": {
                "EventPattern": {"source": ["aws.codecommit"]},
                "Targets": [{"Id": "build", "Arn": {"Fn::GetAtt": ["Project", "Arn"]},
                             "RoleArn": "arn:aws:iam::123456789012:role/events"}]}}},
        "Outputs": {"Name": {"Value": {"Ref": "Project"}},
                    "Arn": {"Value": {"Fn::GetAtt": ["Project", "Arn"]}}},
    })


@pytest.fixture
def clients(local_cloud: Any) -> dict[str, Any]:
    return {name: boto3.client(name) for name in ("cloudformation", "codebuild", "events",
                                                  "iam")}


def settle(cfn: Any, stack_id: str) -> dict:
    def settled() -> dict | None:
        stack = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
        return None if stack["StackStatus"].endswith("IN_PROGRESS") else stack

    return wait_for(settled, timeout=30, interval=0.1, what=f"stack {stack_id}")


def projects(clients: dict, name: str) -> list[dict]:
    return list(clients["codebuild"].batch_get_projects(names=[name])["projects"])


def test_properties_become_the_api_shapes() -> None:
    assert api_shape({"Source": {"BuildSpec": "x", "GitCloneDepth": 1,
                                 "Auth": {"Type": "CODECONNECTIONS"}},
                      "EnvironmentVariables": [{"Name": "A", "Value": "b"}]}) == {
        "source": {"buildspec": "x", "gitCloneDepth": 1, "auth": {"type": "CODECONNECTIONS"}},
        "environmentVariables": [{"name": "A", "value": "b"}]}


def test_a_project_is_created_named_updated_and_deleted_with_its_stack(
        clients: dict) -> None:
    cfn = clients["cloudformation"]
    name = f"project-{uuid.uuid4().hex[:8]}"
    stack_id = cfn.create_stack(StackName=name, TemplateBody=template(name))["StackId"]
    created = settle(cfn, stack_id)
    assert created["StackStatus"] == "CREATE_COMPLETE", created.get("StackStatusReason")

    [project] = projects(clients, name)
    assert project["source"]["buildspec"] == BUILDSPEC
    assert project["source"]["auth"]["type"] == "CODECONNECTIONS"
    assert project["source"]["location"] == "https://github.com/o/r.git"
    assert project["environment"]["environmentVariables"] == [
        {"name": "AMIFORGE_STACK", "type": "PLAINTEXT", "value": "s"}]
    assert project["serviceRole"] == "arn:aws:iam::123456789012:role/publisher"
    assert project["webhook"]["filterGroups"][0][1] == {"type": "HEAD_REF",
                                                        "pattern": "^refs/heads/main$"}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in created["Outputs"]}
    assert outputs["Name"] == name and outputs["Arn"] == project["arn"]
    [rule] = [r for r in clients["events"].list_rules()["Rules"]
              if r["Name"].startswith(name)]
    [target] = clients["events"].list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == project["arn"]

    cfn.update_stack(StackName=stack_id,
                     TemplateBody=template(name, BUILDSPEC.replace("one", "two")))
    assert settle(cfn, stack_id)["StackStatus"] == "UPDATE_COMPLETE"
    [updated] = projects(clients, name)
    assert "echo two" in updated["source"]["buildspec"]

    cfn.delete_stack(StackName=stack_id)
    assert settle(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    assert projects(clients, name) == []


def test_an_oidc_provider_is_made_in_iam_and_goes_with_its_stack(clients: dict) -> None:
    cfn, iam = clients["cloudformation"], clients["iam"]
    url = f"oidc-{uuid.uuid4().hex[:8]}.example.com"
    stack_id = cfn.create_stack(StackName=url.split(".")[0], TemplateBody=json.dumps({
        "Resources": {"Provider": {"Type": "AWS::IAM::OIDCProvider", "Properties": {
            "Url": f"https://{url}", "ClientIdList": ["sts.amazonaws.com"]}}},
        "Outputs": {"Arn": {"Value": {"Ref": "Provider"}}}}))["StackId"]
    created = settle(cfn, stack_id)
    assert created["StackStatus"] == "CREATE_COMPLETE", created.get("StackStatusReason")
    [arn] = [o["OutputValue"] for o in created["Outputs"]]
    assert arn.endswith(f":oidc-provider/{url}")
    assert iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)[
        "ClientIDList"] == ["sts.amazonaws.com"]
    cfn.delete_stack(StackName=stack_id)
    assert settle(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"
    assert arn not in [p["Arn"] for p in
                       iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]
