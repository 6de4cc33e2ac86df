"""The stack's IAM, audited with parliament in every `make test`."""

from __future__ import annotations

from cfnlint.decode.cfn_yaml import loads

from amiforge.deploy.iam_audit import EXPLAINED, audit_policy, audit_template, unexplained
from amiforge.deploy.stack import template_text


def test_every_finding_on_the_stack_is_explained() -> None:
    findings = audit_template(loads(template_text()))
    assert unexplained(findings) == []
    # Explanations must not outlive the findings they explain.
    assert {(f.owner, f.issue) for f in findings} == set(EXPLAINED)


def test_a_wildcard_action_fails_the_audit() -> None:
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]}
    issues = {f.issue for f in unexplained(audit_policy("SomeRole/p", policy))}
    assert "WILDCARD_ACTION" in issues


def test_a_star_resource_that_could_be_narrowed_fails_the_audit() -> None:
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:TerminateInstances", "Resource": "*"}]}
    findings = unexplained(audit_policy("SomeRole/p", policy))
    assert [f.issue for f in findings] == ["RESOURCE_STAR"]
    assert "ec2:terminateinstances" in findings[0].detail


def test_describe_calls_may_use_star_because_aws_cannot_scope_them() -> None:
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:DescribeImages", "Resource": "*"}]}
    assert unexplained(audit_policy("SomeRole/p", policy)) == []
