"""examples/ci/github-oidc-publisher-role.yaml deployed on the local cloud next to an
amiforge stack: the role it makes holds that stack's PublisherPolicy (imported by name)
and is trusted, through GitHub's OIDC provider (made by the template, or the account's
given), for the repository and branch given."""

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
GITHUB = "token.actions.githubusercontent.com"


def deploy(aws: Any, name: str, **parameters: str) -> tuple[str, dict]:
    cfn = aws.client("cloudformation")
    stack_id = cfn.create_stack(
        StackName=name, TemplateBody=TEMPLATE.read_text(), Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in {
            "AmiforgeStack": STACK, "GitHubRepository": "example/golden-recipes",
            **parameters}.items()])["StackId"]

    def settled() -> dict | None:
        found = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
        return None if found["StackStatus"].endswith("IN_PROGRESS") else found

    created = wait_for(settled, timeout=60, interval=0.2, what=f"stack {name}")
    assert created["StackStatus"] == "CREATE_COMPLETE", created.get("StackStatusReason")
    return stack_id, {o["OutputKey"]: o["OutputValue"] for o in created["Outputs"]}


def trusted_and_allowed(aws: Any, role_arn: str) -> tuple[dict, list[str], list[str]]:
    iam = aws.client("iam")
    name = role_arn.rsplit("/", 1)[1]
    trust = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
    [statement] = (json.loads(trust) if isinstance(trust, str) else trust)["Statement"]
    attached = [p["PolicyArn"] for p in
                iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]]
    return statement, attached, list(iam.list_role_policies(RoleName=name)["PolicyNames"])


def test_the_role_holds_the_stacks_publisher_policy(stack: StepEnv, aws: Any) -> None:
    iam, cfn = aws.client("iam"), aws.client("cloudformation")
    publisher = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(
        StackName=STACK)["Stacks"][0]["Outputs"]}["PublisherPolicyArn"]

    # An account without the provider: the template makes it.
    stack_id, outputs = deploy(aws, "amiforge-github-publisher", GitHubBranch="release")
    statement, attached, inline = trusted_and_allowed(aws, outputs["RoleArn"])
    [provider] = [p["Arn"] for p in iam.list_open_id_connect_providers()[
        "OpenIDConnectProviderList"] if p["Arn"].endswith(f"/{GITHUB}")]
    assert statement["Principal"] == {"Federated": provider}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"]["StringEquals"] == {
        f"{GITHUB}:aud": "sts.amazonaws.com",
        f"{GITHUB}:sub": "repo:example/golden-recipes:ref:refs/heads/release"}
    assert (attached, inline) == ([publisher], [])
    cfn.delete_stack(StackName=stack_id)
    wait_for(lambda: iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []
             or None, timeout=30, interval=0.2, what="the provider to go with its stack")

    # An account that has one (one per URL): the template is given its ARN.
    given = iam.create_open_id_connect_provider(
        Url=f"https://{GITHUB}", ClientIDList=["sts.amazonaws.com"],
        ThumbprintList=["6938fd4d98bab03faadb97b34396831e3780aea1"])["OpenIDConnectProviderArn"]
    stack_id, outputs = deploy(aws, "amiforge-github-publisher-2",
                               GitHubOidcProviderArn=given)
    statement, attached, inline = trusted_and_allowed(aws, outputs["RoleArn"])
    assert statement["Principal"] == {"Federated": given}
    assert statement["Condition"]["StringEquals"][f"{GITHUB}:sub"] == \
        "repo:example/golden-recipes:ref:refs/heads/main"
    assert (attached, inline) == ([publisher], [])
    cfn.delete_stack(StackName=stack_id)
    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=given)
