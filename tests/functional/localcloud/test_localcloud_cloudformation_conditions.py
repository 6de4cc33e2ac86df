"""A condition naming another with the short form ``!Condition NAME`` (as amiforge's
template does) is evaluated as CloudFormation evaluates it
(localcloud/fills/cloudformation/conditions.py)."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest

from amiforge.localcloud.testing import wait_for

TEMPLATE = """
Parameters:
  Repository: {Type: String, Default: ""}
  Source: {Type: String, Default: CODECOMMIT}
Conditions:
  HasRepository: !Not [!Equals [!Ref Repository, ""]]
  FromCodeCommit: !And
    - !Condition HasRepository
    - !Equals [!Ref Source, CODECOMMIT]
  Elsewhere: !Or
    - !Not [!Condition HasRepository]
    - !Not [!Equals [!Ref Source, CODECOMMIT]]
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Join ["-", [!Ref AWS::StackName, !If [FromCodeCommit, codecommit, other],
                              !If [Elsewhere, elsewhere, here]]]
"""


@pytest.mark.parametrize(("repository", "source", "expected"), [
    ("recipes", "CODECOMMIT", "codecommit-here"),
    ("recipes", "GITHUB", "other-elsewhere"),
    ("", "CODECOMMIT", "other-elsewhere"),
])
def test_a_condition_named_by_the_short_form_is_evaluated(
        local_cloud: Any, repository: str, source: str, expected: str) -> None:
    cfn, sns = boto3.client("cloudformation"), boto3.client("sns")
    name = f"conditions-{uuid.uuid4().hex[:8]}"
    cfn.create_stack(StackName=name, TemplateBody=TEMPLATE, Parameters=[
        {"ParameterKey": "Repository", "ParameterValue": repository},
        {"ParameterKey": "Source", "ParameterValue": source}])

    def settled() -> dict | None:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        return None if stack["StackStatus"].endswith("IN_PROGRESS") else stack

    assert wait_for(settled, timeout=30, interval=0.1, what=name)["StackStatus"] == \
        "CREATE_COMPLETE"
    topics = [t["TopicArn"].rsplit(":", 1)[1] for t in sns.list_topics()["Topics"]]
    assert f"{name}-{expected}" in topics
    cfn.delete_stack(StackName=name)


def test_an_update_deletes_what_its_conditions_turn_off_and_creates_the_rest(
        local_cloud: Any) -> None:
    cfn, sns = boto3.client("cloudformation"), boto3.client("sns")
    name = f"conditions-{uuid.uuid4().hex[:8]}"
    conditional = TEMPLATE + """
  OnlyFromCodeCommit:
    Type: AWS::SNS::Topic
    Condition: FromCodeCommit
    Properties:
      TopicName: !Sub ${AWS::StackName}-only-codecommit
  # Names the one above and a parameter the update changes: moto would update it while
  # its condition is false, and fail on the missing attribute.
  Dependent:
    Type: AWS::SNS::Topic
    Condition: FromCodeCommit
    Properties:
      TopicName: !Join ["-", [!GetAtt OnlyFromCodeCommit.TopicName, !Ref Source]]
"""

    def create_or_update(call: Any, source: str) -> str:
        call(StackName=name, TemplateBody=conditional, Parameters=[
            {"ParameterKey": "Repository", "ParameterValue": "recipes"},
            {"ParameterKey": "Source", "ParameterValue": source}])

        def settled() -> dict | None:
            stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
            return None if stack["StackStatus"].endswith("IN_PROGRESS") else stack

        return str(wait_for(settled, timeout=30, interval=0.1, what=name)["StackStatus"])

    def topics() -> list[str]:
        return [t["TopicArn"].rsplit(":", 1)[1] for t in sns.list_topics()["Topics"]]

    assert create_or_update(cfn.create_stack, "CODECOMMIT") == "CREATE_COMPLETE"
    assert {f"{name}-only-codecommit", f"{name}-only-codecommit-CODECOMMIT"} <= set(topics())
    assert create_or_update(cfn.update_stack, "GITHUB") == "UPDATE_COMPLETE"
    assert not [t for t in topics() if t.startswith(f"{name}-only-codecommit")]
    assert f"{name}-other-elsewhere" in topics()
    # ... and turned on again: created again, dependencies first.
    assert create_or_update(cfn.update_stack, "CODECOMMIT") == "UPDATE_COMPLETE"
    assert {f"{name}-only-codecommit", f"{name}-only-codecommit-CODECOMMIT"} <= set(topics())
    cfn.delete_stack(StackName=name)


NO_VALUE_TEMPLATE = """
Parameters:
  ExtraRole: {Type: String, Default: ""}
Conditions:
  HasExtraRole: !Not [!Equals [!Ref ExtraRole, ""]]
Resources:
  Policy:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allow, Action: ec2:DescribeImages, Resource: "*"}
          - !If
            - HasExtraRole
            - {Effect: Allow, Action: iam:PassRole, Resource: !Ref ExtraRole}
            - !Ref AWS::NoValue
"""


def test_no_value_in_a_list_leaves_the_list(local_cloud: Any) -> None:
    """A managed policy with a statement present only under a condition: IAM checks its
    document, and a null in place of the statement would be refused."""
    cfn, iam = boto3.client("cloudformation"), boto3.client("iam")
    name = f"novalue-{uuid.uuid4().hex[:8]}"
    cfn.create_stack(StackName=name, TemplateBody=NO_VALUE_TEMPLATE)

    def settled() -> dict | None:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        return None if stack["StackStatus"].endswith("IN_PROGRESS") else stack

    stack = wait_for(settled, timeout=30, interval=0.1, what=name)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    arn = cfn.describe_stack_resource(StackName=name, LogicalResourceId="Policy")[
        "StackResourceDetail"]["PhysicalResourceId"]
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])[
        "PolicyVersion"]["Document"]
    assert [s["Action"] for s in document["Statement"]] == ["ec2:DescribeImages"]
    cfn.delete_stack(StackName=name)
