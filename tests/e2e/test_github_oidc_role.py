"""examples/ci/github-oidc-publisher-role.yaml deployed on the local cloud next to an
amiforge stack: the role it makes holds that stack's PublisherPolicy (imported by name)
and is trusted for the repository and branch given, through the account's provider."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import STACK

from amiforge.localcloud.testing import wait_for
from amiforge.steps.env import StepEnv

pytestmark = pytest.mark.e2e
TEMPLATE = Path(__file__).resolve().parents[2] / "examples" / "ci" / \
    "github-oidc-publisher-role.yaml"


def test_the_role_holds_the_stacks_publisher_policy(stack: StepEnv, aws: Any) -> None:
    iam, cfn = aws.client("iam"), aws.client("cloudformation")
    # moto has no AWS::IAM::OIDCProvider resource: the account's provider is made first
    # and given, the template's other path (an account has one provider per URL).
    provider = iam.create_open_id_connect_provider(
        Url="https://token.actions.githubusercontent.com", ClientIDList=["sts.amazonaws.com"],
        ThumbprintList=["6938fd4d98bab03faadb97b34396831e3780aea1"])["OpenIDConnectProviderArn"]
    stack_id = cfn.create_stack(
        StackName="amiforge-github-publisher", TemplateBody=TEMPLATE.read_text(),
        Capabilities=["CAPABILITY_IAM"], Parameters=[
            {"ParameterKey": "AmiforgeStack", "ParameterValue": STACK},
            {"ParameterKey": "GitHubRepository", "ParameterValue": "example/golden-recipes"},
            {"ParameterKey": "GitHubOidcProviderArn", "ParameterValue": provider}])["StackId"]

    def settled() -> dict | None:
        found = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
        return None if found["StackStatus"].endswith("IN_PROGRESS") else found

    created = wait_for(settled, timeout=60, interval=0.2, what="the publisher role stack")
    assert created["StackStatus"] == "CREATE_COMPLETE", created.get("StackStatusReason")
    role_arn = {o["OutputKey"]: o["OutputValue"] for o in created["Outputs"]}["RoleArn"]
    role = iam.get_role(RoleName=role_arn.rsplit("/", 1)[1])["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Federated": provider}
    assert statement["Condition"]["StringEquals"][
        "token.actions.githubusercontent.com:sub"] == \
        "repo:example/golden-recipes:ref:refs/heads/main"

    publisher = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(
        StackName=STACK)["Stacks"][0]["Outputs"]}["PublisherPolicyArn"]
    attached = iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [publisher]
    assert iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"] == []
    cfn.delete_stack(StackName=stack_id)
