"""The stack's IAM, audited with parliament in every `make test`."""

from __future__ import annotations

import copy

import pytest
from cfnlint.decode.cfn_yaml import loads

from amiforge.deploy.iam_audit import (
    DESTRUCTIVE,
    EXPLAINED,
    audit_policy,
    audit_template,
    concrete_policies,
    tag_rules,
    unexplained,
)
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
    assert [f.issue for f in tag_rules("SomeRole/p", policy)] == ["UNTAGGED_DESTRUCTIVE_ACTION"]


def test_describe_calls_may_use_star_because_aws_cannot_scope_them() -> None:
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ec2:DescribeImages", "Resource": "*"}]}
    assert unexplained(audit_policy("SomeRole/p", policy)) == []


# -- amiforge's isolation rules -------------------------------------------------------------

STACK_TAGGED = {"StringEquals": {"aws:ResourceTag/amiforge:stack": "amiforge"}}


def one(statement: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **statement}]}


def issues(statement: dict) -> list[str]:
    return [f.issue for f in tag_rules("SomeRole/p", one(statement))]


def test_a_destructive_action_without_the_stack_tag_condition_fails() -> None:
    image = "arn:aws:ec2:*::image/*"
    assert issues({"Action": "ec2:DeregisterImage", "Resource": image}) == [
        "UNTAGGED_DESTRUCTIVE_ACTION"]
    # A tag key that merely exists is what anyone can set on anything: not enough.
    assert issues({"Action": "ec2:DeregisterImage", "Resource": image, "Condition": {
        "Null": {"ec2:ResourceTag/amiforge:recipe": "false"}}}) == [
        "UNTAGGED_DESTRUCTIVE_ACTION"]
    # Another stack's name is not this one's.
    assert issues({"Action": "ec2:DeregisterImage", "Resource": image, "Condition": {
        "StringEquals": {"aws:ResourceTag/amiforge:stack": "other"}}}) == [
        "UNTAGGED_DESTRUCTIVE_ACTION"]
    assert issues({"Action": "ec2:DeregisterImage", "Resource": image,
                   "Condition": STACK_TAGGED}) == []


def test_a_creation_without_the_stack_tag_in_the_request_fails() -> None:
    statement = {"Action": "ec2:CreateImage", "Resource": "arn:aws:ec2:us-east-1::image/*"}
    assert issues(statement) == ["UNTAGGED_CREATION"]
    statement["Condition"] = {"StringEquals": {"aws:RequestTag/amiforge:stack": "amiforge"}}
    assert issues(statement) == []


def test_launches_must_require_imdsv2_and_encrypted_volumes() -> None:
    tagged = {"aws:RequestTag/amiforge:stack": "amiforge"}
    instance = "arn:aws:ec2:us-east-1:123456789012:instance/*"
    volume = "arn:aws:ec2:us-east-1:123456789012:volume/*"
    assert issues({"Action": "ec2:RunInstances", "Resource": instance,
                   "Condition": {"StringEquals": tagged}}) == ["LAUNCH_WITHOUT_IMDSV2"]
    assert issues({"Action": "ec2:RunInstances", "Resource": instance, "Condition": {
        "StringEquals": {**tagged, "ec2:MetadataHttpTokens": "required"}}}) == []
    assert issues({"Action": "ec2:RunInstances", "Resource": volume}) == [
        "LAUNCH_WITHOUT_ENCRYPTION"]
    assert issues({"Action": "ec2:RunInstances", "Resource": volume,
                   "Condition": {"Bool": {"ec2:Encrypted": "true"}}}) == []


def test_passrole_must_name_its_role() -> None:
    assert issues({"Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/*"}) == [
        "WILDCARD_PASSROLE"]
    assert issues({"Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/builder"}) == []


def stack_policies() -> list[tuple[str, dict]]:
    return list(concrete_policies(loads(template_text())))


DESTRUCTIVE_STATEMENTS = [
    (owner, index) for owner, policy in stack_policies()
    for index, statement in enumerate(policy["Statement"])
    if {a.lower() for a in (statement["Action"] if isinstance(statement["Action"], list)
                            else [statement["Action"]])} & DESTRUCTIVE]


def test_the_stack_has_destructive_statements_to_check() -> None:
    owners = {owner for owner, _ in DESTRUCTIVE_STATEMENTS}
    assert {"BuildCleanerPolicy", "PruneRole/prune", "SweepRole/sweep", "VerifyRole/verify",
            "BuildStackRole/build-stack", "StopBuilderRole/stopBuilder",
            "RegisterRole/register"} <= owners


@pytest.mark.parametrize(("owner", "index"), DESTRUCTIVE_STATEMENTS,
                         ids=[f"{o}#{i}" for o, i in DESTRUCTIVE_STATEMENTS])
def test_removing_the_tag_condition_of_any_destructive_statement_fails(owner: str,
                                                                      index: int) -> None:
    policy = copy.deepcopy(dict(stack_policies())[owner])
    assert tag_rules(owner, policy) == []
    policy["Statement"][index].pop("Condition")
    assert "UNTAGGED_DESTRUCTIVE_ACTION" in [f.issue for f in tag_rules(owner, policy)]


def test_the_builder_group_has_no_inbound_rule_and_passrole_needs_a_named_role() -> None:
    template = loads(template_text())
    group = template["Resources"]["BuilderSecurityGroup"]["Properties"]
    assert "SecurityGroupIngress" not in group
    assert not [r for r in template["Resources"].values()
                if r["Type"] == "AWS::EC2::SecurityGroupIngress"]
    launch = template["Resources"]["BuilderLaunchPolicy"]["Properties"]
    passrole = [s for s in launch["PolicyDocument"]["Statement"] if "Fn::If" in s]
    assert [s["Fn::If"][0] for s in passrole] == ["HasBuilderRole", "HasAllowedBuilderRoles"]
    assert passrole[0]["Fn::If"][1]["Resource"] == {"Ref": "BuilderRoleArn"}
    # build.instance_profile: exactly the roles the operator listed, no pattern.
    assert passrole[1]["Fn::If"][1]["Resource"] == {
        "Fn::Split": [",", {"Ref": "AllowedBuilderRoles"}]}


def test_a_build_template_s_instance_joins_only_this_stack_s_groups() -> None:
    # A build stack's instance must never join a VPC's default group (or any group this
    # stack did not make): RunInstances reaches security groups only by the stack tag.
    statements = [s for s in dict(stack_policies())["BuildStackRole/build-stack"]["Statement"]
                  if "ec2:RunInstances" in (s["Action"] if isinstance(s["Action"], list)
                                            else [s["Action"]])]
    reaching_groups = [s for s in statements
                       if any(":security-group/" in r for r in (
                           s["Resource"] if isinstance(s["Resource"], list)
                           else [s["Resource"]]))]
    assert reaching_groups
    for statement in reaching_groups:
        assert statement["Condition"]["StringEquals"][
            "aws:ResourceTag/amiforge:stack"] == "amiforge"


def test_a_role_pattern_passes_only_when_held_to_this_stack_s_tag() -> None:
    # Build-template roles have generated names: a pattern is as narrow as a name when
    # only roles carrying this stack's tag match.
    pattern = "arn:aws:iam::1:role/amiforge-build-*"
    assert issues({"Action": "iam:PassRole", "Resource": pattern, "Condition": {
        "StringEquals": {"aws:ResourceTag/amiforge:stack": "other"}}}) == ["WILDCARD_PASSROLE"]
    assert issues({"Action": "iam:PassRole", "Resource": pattern,
                   "Condition": STACK_TAGGED}) == []


def build_template_iam() -> list[dict]:
    """BuildStackRole's IAM statements (BuildTemplateIam=enabled)."""
    return [s for s in dict(stack_policies())["BuildStackRole/build-stack"]["Statement"]
            if any(a.startswith("iam:") for a in (s["Action"] if isinstance(s["Action"], list)
                                                  else [s["Action"]]))]


def test_build_template_roles_are_created_and_changed_only_under_the_boundary() -> None:
    template = loads(template_text())
    boundary = template["Resources"]["BuildRoleBoundary"]
    assert boundary["Condition"] == "BuildTemplateIamEnabled"
    statements = build_template_iam()
    granted = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list)
                                                else [s["Action"]])}
    # Never a way to drop or replace the boundary, nor to make users, keys or policies.
    assert not granted & {"iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary",
                          "iam:CreateUser", "iam:CreateAccessKey", "iam:CreatePolicy",
                          "iam:CreatePolicyVersion", "iam:UpdateAssumeRolePolicy"}
    for statement in statements:
        actions = set(statement["Action"] if isinstance(statement["Action"], list)
                      else [statement["Action"]])
        resources = statement["Resource"] if isinstance(statement["Resource"], list) \
            else [statement["Resource"]]
        assert all(r.split(":")[-1].split("/", 1)[1].startswith("amiforge-build-")
                   for r in resources), statement
        if actions & {"iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy",
                      "iam:DeleteRolePolicy", "iam:DetachRolePolicy"}:
            assert statement["Condition"]["ArnEquals"]["iam:PermissionsBoundary"] == \
                "arn:aws:iam::123456789012:policy/BuildRoleBoundary", statement
        if actions & {"iam:DeleteRole", "iam:PassRole", "iam:PutRolePolicy",
                      "iam:AttachRolePolicy", "iam:UntagRole"}:
            assert statement["Condition"]["StringEquals"][
                "aws:ResourceTag/amiforge:stack"] == "amiforge", statement
        if "iam:PassRole" in actions:
            assert statement["Condition"]["StringEquals"]["iam:PassedToService"] == \
                "ec2.amazonaws.com"


def test_rollout_writes_need_the_consumers_consent_tag_or_the_stack_tag() -> None:
    template = "arn:aws:ec2:*:123456789012:launch-template/*"
    consent = {"StringEquals": {"aws:ResourceTag/amiforge:rollout": "amiforge"}}
    for action in ("ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate"):
        assert issues({"Action": action, "Resource": template}) == [
            "UNTAGGED_DESTRUCTIVE_ACTION"]
        assert issues({"Action": action, "Resource": template, "Condition": consent}) == []
        assert issues({"Action": action, "Resource": template, "Condition": {
            "StringEquals": {"aws:ResourceTag/amiforge:rollout": "other"}}}) == [
            "UNTAGGED_DESTRUCTIVE_ACTION"]
    group = "arn:aws:autoscaling:*:123456789012:autoScalingGroup:*:autoScalingGroupName/*"
    assert issues({"Action": "autoscaling:StartInstanceRefresh", "Resource": group}) == [
        "UNTAGGED_DESTRUCTIVE_ACTION"]
    assert issues({"Action": "autoscaling:StartInstanceRefresh", "Resource": group,
                   "Condition": consent}) == []
    # The consent tag is for the rollout's writes only: it never lets anything be removed.
    assert issues({"Action": "ec2:DeleteLaunchTemplate", "Resource": template,
                   "Condition": consent}) == ["UNTAGGED_DESTRUCTIVE_ACTION"]
