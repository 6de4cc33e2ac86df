"""Audit the stack's IAM policies with parliament (a well-kept IAM linter).

CloudFormation policies contain intrinsic functions; :func:`concrete_policies` resolves
them to representative ARNs of the right shape, so parliament checks real actions against
real resource types. :data:`EXPLAINED` lists the findings the stack accepts, each with the
reason; any other finding fails the audit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "us-east-1",
          "AWS::AccountId": "123456789012", "AWS::StackName": "amiforge"}
ARN_BY_TYPE = {
    "AWS::DynamoDB::Table": "arn:aws:dynamodb:us-east-1:123456789012:table/{name}",
    "AWS::SQS::Queue": "arn:aws:sqs:us-east-1:123456789012:{name}",
    "AWS::SNS::Topic": "arn:aws:sns:us-east-1:123456789012:{name}",
    "AWS::Lambda::Function": "arn:aws:lambda:us-east-1:123456789012:function:{name}",
    "AWS::StepFunctions::StateMachine":
        "arn:aws:states:us-east-1:123456789012:stateMachine:{name}",
    "AWS::IAM::ManagedPolicy": "arn:aws:iam::123456789012:policy/{name}",
    "AWS::IAM::Role": "arn:aws:iam::123456789012:role/{name}",
}

# (policy owner, finding issue) -> why the finding is accepted. Anything else fails.
EXPLAINED: dict[tuple[str, str], str] = {
    ("LaunchRole/launch", "RESOURCE_MISMATCH"):
        "RunInstances touches several resource types; they are split over two statements "
        "so that only instances and volumes must carry amiforge:role=builder (parliament "
        "wants every type in each statement)",
    ("CreateImageRole/createImage", "RESOURCE_MISMATCH"):
        "CreateImage is split likewise: the source instance must be a builder, the new "
        "image and snapshots must carry amiforge:recipe",
    ("LaunchRole/launch", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "iam:PassRole, present only when the operator gives BuilderInstanceProfileArn, "
        "limited to this account's roles and to EC2",
    ("LaunchRole/launch", "PRIVILEGE_ESCALATION"):
        "PassRole + RunInstances is how a builder gets the operator's chosen instance "
        "profile; absent unless BuilderInstanceProfileArn is set",
    ("RegisterRole/register", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "sharing an image is ModifyImageAttribute/ModifySnapshotAttribute, allowed only "
        "on images and snapshots tagged amiforge:recipe",
    ("DistributeRole/distribute", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "kms:CreateGrant lets EC2 encrypt copies; allowed only via the EC2 service",
    ("SweepRole/sweep", "RESOURCE_MISMATCH"):
        "states:DescribeExecution also accepts express-execution ARNs; the build machine "
        "is STANDARD, so only its own executions are granted",
    ("SweepRole/sweep", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "iam:PassRole of BuildStackRole only, to CloudFormation only: the sweeper deletes "
        "leftover build stacks, which runs as the role they were created with",
    ("BuildCleanerPolicy", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "iam:PassRole of BuildStackRole only, to CloudFormation only: deleting a build "
        "stack runs as the role it was created with",
    ("BuildStackRole/build-stack", "RESOURCE_MISMATCH"):
        "CloudFormation's role for build stacks: RunInstances split so only instances must "
        "carry amiforge:role=builder; ssm:GetParameters names AWS's public parameters, "
        "whose ARNs have no account (parliament expects one)",
    ("CreateBuildStackRole/createBuildStack", "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "iam:PassRole of BuildStackRole only, to CloudFormation only",
    ("CreateBuildStackRole/createBuildStack", "PRIVILEGE_ESCALATION"):
        "CreateStack + PassRole is bounded: stacks only named amiforge-build-*, and the only "
        "role passable is BuildStackRole, which can make EC2 builders and security groups",
}
# Actions AWS does not let a policy scope to a resource: "*" is the only correct value.
UNSCOPABLE = frozenset({"ec2:describeinstances", "ec2:describeimages",
                        "states:sendtasksuccess", "ec2:describesnapshots",
                        "ec2:describelaunchtemplates", "ec2:describelaunchtemplateversions",
                        "autoscaling:describeautoscalinggroups",
                        "autoscaling:describelaunchconfigurations", "ssm:describeparameters",
                        "ec2:describesecuritygroups", "cloudformation:validatetemplate",
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
        return PSEUDO.get(name) or _arn(resources, name)
    if "Fn::GetAtt" in value:
        name = value["Fn::GetAtt"][0]
        return _arn(resources, name)
    if "Fn::Sub" in value:
        text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]

        def sub(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in PSEUDO:
                return PSEUDO[token]
            return _arn(resources, token.split(".")[0])

        return re.sub(r"\$\{([^}]+)\}", sub, text)
    if "Fn::If" in value:
        return _resolve(value["Fn::If"][1], resources)
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
    from parliament import analyze_policy_string

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


def audit_template(template: dict[str, Any]) -> list[Finding]:
    """Every finding in the template's policies (explained ones included)."""
    out: list[Finding] = []
    for owner, policy in concrete_policies(template):
        out.extend(audit_policy(owner, policy))
    return out


def unexplained(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if (f.owner, f.issue) not in EXPLAINED]
