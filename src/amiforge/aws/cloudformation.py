"""CloudFormation adapter: build stacks (SABS-style builders) and amiforge's own stack
(deploy/stack.py). Every CloudFormation call amiforge makes is here.

CloudFormation answers a stack that does not exist with the generic ValidationError; only
its message says so, hence the one text match (:func:`describe`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amiforge.aws.errors import ClientError, aws_call, error_code, translate


def describe(cfn: Any, name: str) -> dict[str, Any] | None:
    """The stack ``name`` (its id works too) as DescribeStacks has it; None if there is none."""
    try:
        stacks: list[dict[str, Any]] = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as err:
        if error_code(err) == "ValidationError" and "does not exist" in str(err):
            return None
        raise translate(err, "DescribeStacks") from err
    return stacks[0] if stacks else None


LIVE_STATUSES = ("CREATE_IN_PROGRESS", "CREATE_FAILED", "CREATE_COMPLETE", "ROLLBACK_IN_PROGRESS",
                 "ROLLBACK_FAILED", "ROLLBACK_COMPLETE", "DELETE_IN_PROGRESS", "DELETE_FAILED",
                 "UPDATE_IN_PROGRESS", "UPDATE_COMPLETE", "UPDATE_FAILED",
                 "UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_ROLLBACK_FAILED",
                 "UPDATE_ROLLBACK_COMPLETE")


def stacks_named(cfn: Any, prefix: str) -> list[dict[str, Any]]:
    """Every stack not yet deleted whose name starts with ``prefix``, with its tags.

    ListStacks finds them (it cannot be scoped to names); DescribeStacks, which the
    caller's role may scope to the prefix, adds their tags.
    """
    found = []
    with aws_call("ListStacks"):
        for page in cfn.get_paginator("list_stacks").paginate(StackStatusFilter=list(LIVE_STATUSES)):
            found += [s["StackName"] for s in page.get("StackSummaries", [])
                      if s["StackName"].startswith(prefix)]
    return [stack for name in sorted(set(found)) if (stack := describe(cfn, name)) is not None]


def _template_source(template: str | None, template_url: str | None) -> dict[str, str]:
    """TemplateURL for a template in S3 (over the inline limit), else TemplateBody."""
    if template_url is not None:
        return {"TemplateURL": template_url}
    if template is None:
        raise ValueError("a template or a template URL is needed")
    return {"TemplateBody": template}


def create(cfn: Any, *, name: str, template: str | None = None,
           template_url: str | None = None, parameters: Mapping[str, str],
           tags: Mapping[str, str], role_arn: str | None, client_token: str,
           capabilities: tuple[str, ...] = ()) -> str:
    kwargs: dict[str, Any] = {
        "StackName": name, **_template_source(template, template_url), "OnFailure": "ROLLBACK",
        "Parameters": [{"ParameterKey": k, "ParameterValue": v}
                       for k, v in sorted(parameters.items())],
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
        "ClientRequestToken": client_token[:128],
    }
    if role_arn:
        kwargs["RoleARN"] = role_arn
    if capabilities:
        kwargs["Capabilities"] = list(capabilities)
    with aws_call("CreateStack"):
        return str(cfn.create_stack(**kwargs)["StackId"])


def declared_parameters(cfn: Any, template: str | None = None,
                        template_url: str | None = None) -> set[str]:
    return set(template_summary(cfn, template, template_url)[0])


def template_summary(cfn: Any, template: str | None = None, template_url: str | None = None
                     ) -> tuple[dict[str, dict[str, Any]], tuple[str, ...]]:
    """ValidateTemplate as data: ({parameter: {"Default": value} if it has one, else {}},
    the capabilities CreateStack will need, like CAPABILITY_IAM)."""
    with aws_call("ValidateTemplate"):
        response = cfn.validate_template(**_template_source(template, template_url))
    parameters = {str(p["ParameterKey"]): ({"Default": p["DefaultValue"]}
                                           if "DefaultValue" in p else {})
                  for p in response.get("Parameters", [])}
    return parameters, tuple(str(c) for c in response.get("Capabilities", []))


def failure_reasons(cfn: Any, name: str, limit: int | None = 10, *,
                    with_type: bool = False) -> list[str]:
    """"<logical id>: <reason>" of each failed resource event, newest first (``with_type``:
    "<logical id> (<resource type>): <reason>")."""
    with aws_call("DescribeStackEvents"):
        events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    reasons = [f"{e['LogicalResourceId']}"
               f"{' (' + e['ResourceType'] + ')' if with_type else ''}: "
               f"{e.get('ResourceStatusReason') or e['ResourceStatus']}"
               for e in events if e["ResourceStatus"].endswith("_FAILED")]
    return reasons[:limit] if limit else reasons


def create_stack(cfn: Any, request: Mapping[str, Any]) -> str:
    """CreateStack with the request as given; the stack id."""
    with aws_call("CreateStack"):
        return str(cfn.create_stack(**request)["StackId"])


def update_stack(cfn: Any, request: Mapping[str, Any]) -> bool:
    """UpdateStack; False if CloudFormation found nothing to change (its ValidationError
    "No updates are to be performed", which is not a failure)."""
    try:
        cfn.update_stack(**request)
    except ClientError as err:
        if error_code(err) == "ValidationError" and "No updates are to be performed" in str(err):
            return False
        raise translate(err, "UpdateStack") from err
    return True


def delete(cfn: Any, name: str) -> bool:
    """Start deleting ``name``; False if there is no such stack (or it is gone)."""
    stack = describe(cfn, name)
    if stack is None or stack["StackStatus"] == "DELETE_COMPLETE":
        return False
    with aws_call("DeleteStack"):
        cfn.delete_stack(StackName=stack["StackId"])
    return True


def stacks_with_parameter(cfn: Any, key: str, value: str) -> list[str]:
    """Live stacks of the region whose parameter ``key`` is ``value``."""
    users = []
    with aws_call("DescribeStacks"):
        for page in cfn.get_paginator("describe_stacks").paginate():
            for described in page.get("Stacks", []):
                parameters = {p["ParameterKey"]: p.get("ParameterValue")
                              for p in described.get("Parameters", [])}
                if (parameters.get(key) == value
                        and described["StackStatus"] != "DELETE_COMPLETE"):
                    users.append(described["StackName"])
    return sorted(users)
