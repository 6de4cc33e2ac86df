"""examples/ci/github-oidc-publisher-role.yaml: lint-clean, trusted for one branch of one
repository through GitHub's OIDC provider, allowed only the stack's PublisherPolicy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from cfnlint.decode.cfn_yaml import loads

CI = Path(__file__).resolve().parents[2] / "examples" / "ci"
OIDC_ROLE = CI / "github-oidc-publisher-role.yaml"
GITHUB = "token.actions.githubusercontent.com"


def test_cfn_lint_reports_nothing() -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(OIDC_ROLE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_the_role_trusts_one_branch_of_one_repository_and_holds_only_publishing() -> None:
    template = loads(OIDC_ROLE.read_text())
    role = template["Resources"]["PublisherRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert set(trust["Condition"]) == {"StringEquals"}  # exact values: no StringLike globs
    assert trust["Condition"]["StringEquals"] == {
        f"{GITHUB}:aud": "sts.amazonaws.com",
        f"{GITHUB}:sub": {"Fn::Sub": "repo:${GitHubRepository}:ref:refs/heads/${GitHubBranch}"}}
    for name in ("GitHubRepository", "GitHubBranch"):
        assert "*" not in template["Parameters"][name]["AllowedPattern"]
    assert role["ManagedPolicyArns"] == [
        {"Fn::ImportValue": {"Fn::Sub": "${AmiforgeStack}-PublisherPolicy"}}]
    assert "Policies" not in role
    provider = template["Resources"]["GitHubOidcProvider"]["Properties"]
    assert provider == {"Url": f"https://{GITHUB}", "ClientIdList": ["sts.amazonaws.com"]}


def test_the_workflow_assumes_the_role_only_on_pushes_to_main() -> None:
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    steps = workflow["jobs"]["recipes"]["steps"]
    on_main = "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    for step in steps:
        if "configure-aws-credentials" in step.get("uses", "") or \
                "amiforge plan" in step.get("run", "") or " publish " in step.get("run", ""):
            assert step["if"] == on_main, step
    assert any(step.get("run") == "amiforge validate recipes/" and "if" not in step
               for step in steps)
