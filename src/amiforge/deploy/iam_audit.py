"""Audit the stack's IAM policies with parliament (a well-kept IAM linter).

CloudFormation policies contain intrinsic functions; :func:`concrete_policies` resolves
them to representative ARNs of the right shape, so parliament checks real actions against
real resource types. :data:`EXPLAINED` lists the findings the stack accepts, each with the
reason; any other finding fails the audit.

On top of parliament, amiforge's own rules (:func:`tag_rules`): every destructive action
is conditioned on ``amiforge:stack`` equalling the stack's name (so a stack removes only
what it made), every creation that AWS lets a policy tag-check carries that tag in the
request, launches require IMDSv2 and encrypted volumes, and PassRole names one role.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "us-east-1",
          "AWS::AccountId": "123456789012", "AWS::StackName": "amiforge"}
# Representative values of the template's parameters that IAM statements name.
PARAMETER_VALUES = {"BuilderRoleArn": "arn:aws:iam::123456789012:role/amiforge-builder",
                    "AllowedBuilderRoles": "arn:aws:iam::123456789012:role/web-builder,"
                                           "arn:aws:iam::123456789012:role/db-builder"}
STACK_TAG = "amiforge:stack"
# Actions that remove, stop or change what exists: each statement allowing one must hold
# it to resources tagged with this stack's name.
DESTRUCTIVE = frozenset({
    "ec2:terminateinstances", "ec2:stopinstances", "ec2:deregisterimage",
    "ec2:deletesnapshot", "ec2:deletesecuritygroup", "ec2:deletelaunchtemplate",
    "ec2:createlaunchtemplateversion", "ec2:modifyimageattribute",
    "ec2:modifysnapshotattribute", "ec2:enableimagedeprecation",
    "ec2:disableimagedeprecation", "ec2:authorizesecuritygroupingress",
    "ec2:authorizesecuritygroupegress", "ec2:revokesecuritygroupingress",
    "ec2:revokesecuritygroupegress", "ec2:modifyinstanceattribute",
    "ec2:deletevolume", "ec2:detachvolume", "cloudformation:deletestack",
    "cloudformation:updatestack", "ec2:modifylaunchtemplate",
    "autoscaling:startinstancerefresh", "autoscaling:rollbackinstancerefresh",
    "autoscaling:cancelinstancerefresh",
})
# The rollout writes to the consumer's launch templates and groups, which this stack did
# not make (so they must never carry amiforge:stack, which the deletion gate reads as
# "ours to remove"): for these actions the consumer's consent tag amiforge:rollout =
# <stack> is the condition instead.
ROLLOUT_TAG = "amiforge:rollout"
ROLLOUT_ACTIONS = frozenset({
    "ec2:createlaunchtemplateversion", "ec2:modifylaunchtemplate",
    "autoscaling:startinstancerefresh", "autoscaling:rollbackinstancerefresh",
    "autoscaling:cancelinstancerefresh",
})
# Creations -> the ARN fragment of what they create: a statement granting one on that
# type must require this stack's tag in the request (aws:RequestTag).
CREATES = {
    "ec2:runinstances": (":instance/",),
    "ec2:createimage": (":image/", ":snapshot/"),
    "ec2:copyimage": (":image/",),
    "ec2:createsecuritygroup": (":security-group/",),
    "ec2:createlaunchtemplate": (":launch-template/",),
    "cloudformation:createstack": (":stack/",),
}
# Actions that read from an existing resource to make a new one: the source must be ours.
SOURCES = {"ec2:createimage": (":instance/",)}
ARN_BY_TYPE = {
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:us-east-1:123456789012:table/{name}",
    "AWS::SQS::Queue": "arn:aws:sqs:us-east-1:123456789012:{name}",
    "AWS::SNS::Topic": "arn:aws:sns:us-east-1:123456789012:{name}",
    "AWS::Lambda::Function": "arn:aws:lambda:us-east-1:123456789012:function:{name}",
    "AWS::StepFunctions::StateMachine":
        "arn:aws:states:us-east-1:123456789012:stateMachine:{name}",
    "AWS::IAM::ManagedPolicy": "arn:aws:iam::123456789012:policy/{name}",
    "AWS::IAM::Role": "arn:aws:iam::123456789012:role/{name}",
    "AWS::CodeBuild::Project": "arn:aws:codebuild:us-east-1:123456789012:project/{name}",
}

# (policy owner, finding issue) -> why the finding is accepted. Anything else fails.
EXPLAINED: dict[tuple[str, str], str] = {
    **{(owner, "RESOURCE_STAR"):
       "autoscaling:DescribeInstanceRefreshes takes no resource (AWS's service authorization "
       "reference lists none; parliament contradicts itself with RESOURCE_MISMATCH when it "
       "is scoped to a group)"
       for owner in ("RollOutRole/rollOut", "AwaitRefreshRole/awaitRefresh")},
    ("BuilderLaunchPolicy", "RESOURCE_MISMATCH"):
        "RunInstances touches several resource types; they are split over statements so "
        "that instances (IMDSv2, amiforge:role=builder), volumes (encrypted) and network "
        "interfaces carry this stack's tag (parliament wants every type in each statement)",
    ("CreateImageRole/createImage", "RESOURCE_MISMATCH"):
        "CreateImage is split likewise: the source instance must be this stack's builder, "
        "the new image and snapshots must carry this stack's amiforge:stack tag",
    ("AwaitStopRole/awaitStop", "RESOURCE_MISMATCH"):
        "the same split CreateImage: a builder already stopped when AwaitStop parks its "
        "token is judged and imaged there (steps/stop_verdict.py), under the same conditions",
    ("InstanceStateRole/instanceState", "RESOURCE_MISMATCH"):
        "the same split CreateImage: the stop event's invocation creates the image of a "
        "builder it judged (steps/stop_verdict.py) under the same conditions",
    ("BuilderLaunchPolicy", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "iam:PassRole, present only when the operator gives BuilderInstanceProfileArn and "
        "BuilderRoleArn, of that one role and to EC2 only",
    ("BuilderLaunchPolicy", "PRIVILEGE_ESCALATION"):
        "PassRole + RunInstances is how a builder gets the operator's chosen instance "
        "profile; absent unless BuilderInstanceProfileArn is set",
    ("LaunchTesterRole/launchTester", "RESOURCE_MISMATCH"):
        "the test phase launches its tester as Launch launches a builder: RunInstances "
        "split over statements (instances IMDSv2 and amiforge:role=tester, volumes "
        "encrypted, network interfaces tagged with this stack)",
    ("LaunchTesterRole/launchTester", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "iam:PassRole of the operator's builder role to EC2 only, present only when "
        "BuilderInstanceProfileArn and BuilderRoleArn are given (a tester runs like a "
        "builder, with its instance profile)",
    ("LaunchTesterRole/launchTester", "PRIVILEGE_ESCALATION"):
        "PassRole + RunInstances gives a tester the operator's chosen instance profile; "
        "absent unless BuilderInstanceProfileArn is set",
    ("RegisterRole/register", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "sharing an image is ModifyImageAttribute/ModifySnapshotAttribute, allowed only "
        "on images and snapshots tagged amiforge:stack=<this stack>",
    ("DistributeRole/distribute", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "kms:CreateGrant lets EC2 encrypt copies; allowed only via the EC2 service",
    ("SweepRole/sweep", "RESOURCE_MISMATCH"):
        "states:DescribeExecution also accepts express-execution ARNs; the build machine "
        "is STANDARD, so only its own executions are granted",
    ("PublisherPolicy", "RESOURCE_MISMATCH"):
        "states:DescribeExecution also accepts express-execution ARNs; the build machine "
        "is STANDARD, so only its own executions are granted",
    ("SweepRole/sweep", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "iam:PassRole of BuildStackRole only, to CloudFormation only: the sweeper deletes "
        "leftover build stacks, which runs as the role they were created with",
    ("BuildCleanerPolicy", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "iam:PassRole of BuildStackRole only, to CloudFormation only: deleting a build "
        "stack runs as the role it was created with",
    ("BuildStackRole/build-stack", "RESOURCE_MISMATCH"):
        "CloudFormation's role for build stacks: RunInstances and CreateSecurityGroup split "
        "so that instances (IMDSv2, tagged), volumes (encrypted) and new groups (tagged) "
        "have their own conditions; ssm:GetParameters names AWS's public parameters, "
        "whose ARNs have no account (parliament expects one)",
    ("BuildStackRole/build-stack", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "only with BuildTemplateIam=enabled: roles named amiforge-build-* created with and "
        "kept under BuildRoleBoundary, their policies changed and the roles removed only "
        "when tagged with this stack, instance profiles of that name, PassRole of those "
        "roles to EC2 only",
    ("BuildStackRole/build-stack", "PRIVILEGE_ESCALATION"):
        "a build template's role can never exceed BuildRoleBoundary (CreateRole and every "
        "policy change require it, and removing a boundary is not granted); absent unless "
        "BuildTemplateIam=enabled",
    ("CreateBuildStackRole/createBuildStack", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "iam:PassRole of BuildStackRole only, to CloudFormation only",
    ("CreateBuildStackRole/createBuildStack", "PRIVILEGE_ESCALATION"):
        "CreateStack + PassRole is bounded: stacks only named amiforge-build-*, and the only "
        "role passable is BuildStackRole, which can make EC2 builders and security groups "
        "and change only what carries this stack's tag",
}
# Values the audit gives parameters that policies are built from (their non-empty case).
SAMPLE_PARAMETERS = {"BaseParameterPrefixes": "/golden/amis/,/vendor/",
                     "GitTriggerRepository": "recipes",
                     "GitTriggerConnectionArn": "arn:aws:codeconnections:us-east-1:"
                     "123456789012:connection/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
                     "BundleBucket": "amiforge-artifacts-123456789012-us-east-1"}
# Actions AWS does not let a policy scope to a resource: "*" is the only correct value.
UNSCOPABLE = frozenset({"ec2:describeinstances", "ec2:describeimages",
                        "states:sendtasksuccess", "states:sendtaskfailure",
                        "ec2:describesnapshots",
                        "ec2:describelaunchtemplates", "ec2:describelaunchtemplateversions",
                        "autoscaling:describeautoscalinggroups",
                        "autoscaling:describelaunchconfigurations", "ssm:describeparameters",
                        "ec2:describesecuritygroups", "cloudformation:validatetemplate",
                        "ec2:describesubnets", "ec2:describekeypairs",
                        # The SSM agent's channels (BuildRoleBoundary) have no resource type.
                        "ssmmessages:createcontrolchannel", "ssmmessages:createdatachannel",
                        "ssmmessages:opencontrolchannel", "ssmmessages:opendatachannel",
                        "ec2messages:acknowledgemessage", "ec2messages:deletemessage",
                        "ec2messages:failmessage", "ec2messages:getendpoint",
                        "ec2messages:getmessages", "ec2messages:sendreply",
                        # Listing every fleet: the reference (and parliament) require "*".
                        "ec2:describespotfleetrequests", "ec2:describefleets",
                        # ListStacks has no resource type in the service authorization
                        # reference; the sweeper filters the names to amiforge-build-*.
                        "cloudformation:liststacks"})


@dataclass(frozen=True)
class Finding:
    owner: str
    issue: str
    detail: str

    def __str__(self) -> str:
        return f"{self.owner}: {self.issue}: {self.detail}"


def _arn(resources: dict[str, Any], name: str) -> str:
    kind = resources.get(name, {}).get("Type", "")
    return ARN_BY_TYPE.get(kind, "arn:aws:unknown:us-east-1:123456789012:{name}").format(
        name=name)


def _resolve(value: Any, resources: dict[str, Any]) -> Any:
    if isinstance(value, list):
        resolved = [_resolve(v, resources) for v in value]
        return [v for v in resolved if v is not None]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        name = value["Ref"]
        if name == "AWS::NoValue":
            return None
        return PSEUDO.get(name) or PARAMETER_VALUES.get(name) or _arn(resources, name)
    if "Fn::GetAtt" in value:
        name = value["Fn::GetAtt"][0]
        return _arn(resources, name)
    if "Fn::Sub" in value:
        text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
        names = {} if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][1]

        def sub(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in names:
                return str(_resolve(names[token], resources) or "")
            if token in PSEUDO or token in SAMPLE_PARAMETERS:
                return PSEUDO.get(token) or SAMPLE_PARAMETERS[token]
            return _arn(resources, token.split(".")[0])

        return re.sub(r"\$\{([^}]+)\}", sub, text)
    if "Fn::If" in value:
        return _resolve(value["Fn::If"][1], resources)
    if "Fn::Split" in value:
        delimiter, source = value["Fn::Split"]
        text = _resolve(source, resources)
        return text.split(delimiter) if isinstance(text, str) else []
    if "Fn::Select" in value:
        index, items = value["Fn::Select"]
        items = _resolve(items, resources)
        return items[int(index)] if isinstance(items, list) and len(items) > int(index) else None
    return {k: _resolve(v, resources) for k, v in value.items()}


def concrete_policies(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner, policy document) for every inline and managed policy in the template."""
    resources = template["Resources"]
    for name, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                yield (f"{name}/{policy['PolicyName']}",
                       _resolve(policy["PolicyDocument"], resources))
        elif resource["Type"] == "AWS::IAM::ManagedPolicy":
            yield name, _resolve(properties["PolicyDocument"], resources)


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    statements = policy.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def audit_policy(owner: str, policy: dict[str, Any]) -> list[Finding]:
    """parliament's findings plus amiforge's own rules, minus the explained ones."""
    from parliament import analyze_policy_string  # type: ignore[import-untyped]

    findings: list[Finding] = []
    analysed = analyze_policy_string(json.dumps(policy), include_community_auditors=True)
    for finding in analysed.findings:
        if finding.issue == "RESOURCE_STAR":
            continue  # judged per statement below, where we know the action
        findings.append(Finding(owner, finding.issue, json.dumps(finding.detail,
                                                                   default=str)))
    for statement in _statements(policy):
        actions = [a.lower() for a in _as_list(statement.get("Action", []))]
        if any(a == "*" or a.endswith(":*") for a in actions):
            findings.append(Finding(owner, "WILDCARD_ACTION", f"{actions}"))
        if "*" in _as_list(statement.get("Resource", [])):
            narrowable = [a for a in actions if a not in UNSCOPABLE and a != "iam:passrole"]
            if narrowable:
                findings.append(Finding(owner, "RESOURCE_STAR",
                                        f"{narrowable} can be scoped to a resource"))
            if "iam:passrole" in actions and "Condition" not in statement:
                findings.append(Finding(owner, "UNCONDITIONED_PASSROLE", "iam:PassRole on *"))
    return findings


def _conditions(statement: dict[str, Any], operator: str) -> dict[str, list[str]]:
    """{lower-cased condition key: values} under one operator (StringEquals, Bool...)."""
    block = (statement.get("Condition") or {}).get(operator) or {}
    return {k.lower(): [str(v) for v in _as_list(value)] for k, value in block.items()}


def _tag_condition(statement: dict[str, Any], kind: str, stack: str,
                   tag: str = STACK_TAG) -> bool:
    """True if the statement requires ``tag`` (``amiforge:stack``) = ``stack`` on the
    resource (``kind`` "ResourceTag") or in the request ("RequestTag")."""
    equals = _conditions(statement, "StringEquals")
    keys = {f"aws:{kind}/{tag}".lower(), f"ec2:{kind}/{tag}".lower()}
    return any(equals.get(key) == [stack] for key in keys)


def tag_rules(owner: str, policy: dict[str, Any], stack: str = PSEUDO["AWS::StackName"]
              ) -> list[Finding]:
    """amiforge's isolation rules for one policy (see the module docstring)."""
    findings: list[Finding] = []
    for statement in _statements(policy):
        if statement.get("Effect") != "Allow":
            continue
        actions = {a.lower() for a in _as_list(statement.get("Action", []))}
        resources = [str(r) for r in _as_list(statement.get("Resource", []))]
        sid = statement.get("Sid", "?")

        def touches(fragments: tuple[str, ...], resources: list[str] = resources) -> bool:
            return any(f in r or r == "*" for r in resources for f in fragments)

        for action in sorted(actions & DESTRUCTIVE):
            if action in ROLLOUT_ACTIONS and _tag_condition(statement, "ResourceTag", stack,
                                                            ROLLOUT_TAG):
                continue
            if not _tag_condition(statement, "ResourceTag", stack):
                findings.append(Finding(owner, "UNTAGGED_DESTRUCTIVE_ACTION",
                                        f"{sid}: {action} without aws:ResourceTag/"
                                        f"{STACK_TAG} = {stack}"))
        for action, fragments in CREATES.items():
            if action in actions and touches(fragments) \
                    and not _tag_condition(statement, "RequestTag", stack):
                findings.append(Finding(owner, "UNTAGGED_CREATION",
                                        f"{sid}: {action} without aws:RequestTag/"
                                        f"{STACK_TAG} = {stack}"))
        for action, fragments in SOURCES.items():
            if action in actions and touches(fragments) \
                    and not _tag_condition(statement, "ResourceTag", stack):
                findings.append(Finding(owner, "UNTAGGED_SOURCE",
                                        f"{sid}: {action} from a resource without "
                                        f"aws:ResourceTag/{STACK_TAG} = {stack}"))
        if "ec2:runinstances" in actions:
            equals = _conditions(statement, "StringEquals")
            if touches((":instance/",)) and \
                    equals.get("ec2:metadatahttptokens") != ["required"]:
                findings.append(Finding(owner, "LAUNCH_WITHOUT_IMDSV2",
                                        f"{sid}: RunInstances without ec2:MetadataHttpTokens"
                                        " = required"))
            if touches((":volume/",)) and \
                    _conditions(statement, "Bool").get("ec2:encrypted") != ["true"]:
                findings.append(Finding(owner, "LAUNCH_WITHOUT_ENCRYPTION",
                                        f"{sid}: RunInstances without ec2:Encrypted = true"))
        # A pattern of roles is as narrow as a named one when only roles carrying this
        # stack's tag match (build-template roles have generated names).
        if "iam:passrole" in actions and any("*" in r for r in resources) \
                and not _tag_condition(statement, "ResourceTag", stack):
            findings.append(Finding(owner, "WILDCARD_PASSROLE",
                                    f"{sid}: iam:PassRole on {resources}: name the role"))
    return findings


def audit_template(template: dict[str, Any]) -> list[Finding]:
    """Every finding in the template's policies (explained ones included)."""
    out: list[Finding] = []
    for owner, policy in concrete_policies(template):
        out.extend(audit_policy(owner, policy))
        out.extend(tag_rules(owner, policy))
    return out


def unexplained(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if (f.owner, f.issue) not in EXPLAINED]
