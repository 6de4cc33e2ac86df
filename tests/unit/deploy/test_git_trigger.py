"""The git trigger's part of the template: off unless asked for, and its roles hold
exactly what publishing needs (PublisherPolicy, held to publish's calls by
test_publisher_policy.py) plus what CodeBuild and EventBridge themselves need, audited
in both of its shapes (CodeCommit, and a CodeConnections connection)."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from cfnlint.decode.cfn_yaml import loads

from amiforge.deploy.iam_audit import audit_policy, concrete_policies, tag_rules, unexplained
from amiforge.deploy.stack import template_text

TRIGGER_RESOURCES = {"GitTriggerRole", "GitTriggerLogGroup", "GitTriggerProject",
                     "GitTriggerEventsRole", "GitTriggerRule"}


@pytest.fixture(scope="module")
def template() -> dict:
    return loads(template_text())


def choose(node: Any, condition: str, value: bool) -> Any:
    """``node`` with every ``Fn::If`` on ``condition`` replaced by the branch taken."""
    if isinstance(node, list):
        return [choose(item, condition, value) for item in node]
    if isinstance(node, dict):
        if set(node) == {"Fn::If"} and node["Fn::If"][0] == condition:
            return choose(node["Fn::If"][1 if value else 2], condition, value)
        return {key: choose(item, condition, value) for key, item in node.items()}
    return node


def statements(policy: dict) -> list[dict]:
    return list(policy["Statement"])


def actions(statement: dict) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def test_the_trigger_exists_only_when_a_repository_is_given(template: dict) -> None:
    resources = {name for name in template["Resources"] if name.startswith("GitTrigger")}
    assert resources == TRIGGER_RESOURCES
    assert {template["Resources"][n]["Condition"] for n in resources} == {
        "HasGitTrigger", "GitTriggerFromCodeCommit"}
    assert template["Parameters"]["GitTriggerRepository"]["Default"] == ""
    assert template["Conditions"]["HasGitTrigger"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "GitTriggerRepository"}, ""]}]}
    # The rule and its role serve CodeCommit only; connections use CodeBuild's webhook.
    assert template["Resources"]["GitTriggerRule"]["Condition"] == "GitTriggerFromCodeCommit"
    assert template["Resources"]["GitTriggerEventsRole"]["Condition"] == \
        "GitTriggerFromCodeCommit"
    assert template["Outputs"]["GitTriggerProjectName"]["Condition"] == "HasGitTrigger"


def test_the_publisher_role_is_publisher_policy_and_codebuilds_own_needs(
        template: dict) -> None:
    role = template["Resources"]["GitTriggerRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [{"Ref": "PublisherPolicy"}]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "codebuild.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert trust["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"].endswith(
        ":project/${AWS::StackName}-git-trigger")
    [policy] = role["Policies"]
    codecommit = choose(policy["PolicyDocument"], "GitTriggerFromCodeCommit", True)
    assert [actions(s) for s in statements(codecommit)] == [
        ["logs:CreateLogStream", "logs:PutLogEvents"], ["codecommit:GitPull"]]
    logs, pull = statements(codecommit)
    assert logs["Resource"]["Fn::Sub"].endswith(
        ":log-group:/aws/codebuild/${AWS::StackName}-git-trigger:*")
    assert pull["Resource"]["Fn::Sub"].endswith(":${GitTriggerRepository}")
    connection = choose(policy["PolicyDocument"], "GitTriggerFromCodeCommit", False)
    [_logs, use] = statements(connection)
    assert [a["Fn::Sub"][0] for a in actions(use)] == ["${Prefix}:GetConnectionToken",
                                                        "${Prefix}:GetConnection"]
    assert use["Resource"] == {"Fn::Sub": "${GitTriggerConnectionArn}"}


@pytest.mark.parametrize("from_codecommit", [True, False], ids=["codecommit", "connection"])
def test_both_shapes_of_the_role_pass_the_audit(template: dict, from_codecommit: bool) -> None:
    shaped = copy.deepcopy(template)
    shaped["Resources"] = choose(shaped["Resources"], "GitTriggerFromCodeCommit",
                                 from_codecommit)
    [(owner, policy)] = [(o, p) for o, p in concrete_policies(shaped)
                         if o == "GitTriggerRole/git-trigger"]
    findings = audit_policy(owner, policy) + tag_rules(owner, policy)
    assert unexplained(findings) == []
    assert all("*" not in str(s["Resource"]) or s["Resource"].endswith(":*")
               for s in statements(policy))
    if not from_codecommit:  # the prefix comes from the connection's own ARN
        [_logs, use] = statements(policy)
        assert use["Action"] == ["codeconnections:GetConnectionToken",
                                 "codeconnections:GetConnection"]
        assert use["Resource"].startswith("arn:aws:codeconnections:")


def test_eventbridge_may_only_start_this_project(template: dict) -> None:
    role = template["Resources"]["GitTriggerEventsRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    [policy] = role["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [{
        "Effect": "Allow", "Action": "codebuild:StartBuild",
        "Resource": {"Fn::GetAtt": ["GitTriggerProject", "Arn"]}}]
    rule = template["Resources"]["GitTriggerRule"]["Properties"]
    assert rule["EventPattern"]["detail"]["referenceName"] == [{"Ref": "GitTriggerBranch"}]
    [target] = rule["Targets"]
    assert target["InputTransformer"] == {"InputPathsMap": {"commit": "$.detail.commitId"},
                                          "InputTemplate": '{"sourceVersion": <commit>}'}


def test_the_buildspec_installs_amiforge_then_publishes(template: dict) -> None:
    project = template["Resources"]["GitTriggerProject"]["Properties"]
    spec = yaml.safe_load(project["Source"]["BuildSpec"])
    assert spec["phases"]["install"]["commands"] == ['pip install --quiet "$AMIFORGE_PACKAGE"']
    assert spec["phases"]["build"]["commands"] == [
        'amiforge --output json publish "$AMIFORGE_RECIPES"']
    names = {v["Name"]: v["Value"] for v in project["Environment"]["EnvironmentVariables"]}
    assert names == {"AMIFORGE_STACK": {"Ref": "AWS::StackName"},
                     "AMIFORGE_RECIPES": {"Ref": "GitTriggerRecipesDir"},
                     "AMIFORGE_PACKAGE": {"Ref": "GitTriggerPackage"}}
    # A webhook (connections) fires on pushes to the branch only.
    webhook = choose(project["Triggers"], "GitTriggerFromConnection", True)
    assert webhook["FilterGroups"] == [[
        {"Type": "EVENT", "Pattern": "PUSH"},
        {"Type": "HEAD_REF", "Pattern": {"Fn::Sub": "^refs/heads/${GitTriggerBranch}$"}}]]


def test_the_default_package_is_the_wheel_make_dist_builds(template: dict) -> None:
    root = Path(__file__).resolve().parents[3]
    version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    assert template["Parameters"]["GitTriggerPackage"]["Default"] == \
        f"./tools/amiforge-{version}-py3-none-any.whl"
    assert "-m build --outdir dist" in (root / "Makefile").read_text()
