"""Detect and Resolve read only AWS's public parameters and the stack's BaseParameterPrefixes."""

from __future__ import annotations

from cfnlint.decode.cfn_yaml import loads

from amiforge.deploy.iam_audit import concrete_policies
from amiforge.deploy.stack import template_text

ROLES = {"ResolveRole/resolve": "ResolveFunction", "DetectRole/detect": "DetectFunction"}


def _ssm_reads(template: dict) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for owner, document in concrete_policies(template):
        for statement in document["Statement"]:
            actions = statement["Action"]
            actions = actions if isinstance(actions, list) else [actions]
            if any(a.lower().startswith("ssm:get") for a in actions):
                resources = statement["Resource"]
                found.setdefault(owner, []).extend(
                    resources if isinstance(resources, list) else [resources])
    return found


def test_detect_and_resolve_read_only_public_and_allowed_prefixes() -> None:
    reads = _ssm_reads(loads(template_text()))
    for owner in ROLES:
        # The audit fills BaseParameterPrefixes with "/golden/amis/,/vendor/".
        assert sorted(set(reads[owner])) == [
            "arn:aws:ssm:us-east-1:123456789012:parameter/aws/service/*",
            "arn:aws:ssm:us-east-1:123456789012:parameter/golden/amis/*",
            "arn:aws:ssm:us-east-1:123456789012:parameter/vendor/*",
            "arn:aws:ssm:us-east-1::parameter/aws/service/*",
        ], owner


def test_no_other_function_reads_every_parameter_for_a_recipe() -> None:
    reads = _ssm_reads(loads(template_text()))
    for owner in ROLES:
        assert not any(r.endswith(":parameter/*") for r in reads[owner]), owner


def test_the_prefixes_reach_both_functions_and_are_a_checked_parameter() -> None:
    template = loads(template_text())
    parameter = template["Parameters"]["BaseParameterPrefixes"]
    assert parameter["Default"] == ""
    assert parameter["AllowedPattern"] == (
        "^$|^(/[A-Za-z0-9_.-]+)+/(,(/[A-Za-z0-9_.-]+)+/){0,2}$")
    for function in ROLES.values():
        variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert variables["AMIFORGE_BASE_PARAMETER_PREFIXES"] == {"Ref": "BaseParameterPrefixes"}
