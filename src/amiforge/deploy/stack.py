"""Put the amiforge stack into an account: upload the bundle, create or update, wait.

Plan then execute, like every deploy tool worth imitating: :func:`deploy` computes the
bundle (content-addressed key, so changed code rolls out; an existing key is re-uploaded
unless its ETag proves the same bytes) into the artifact bucket, checked on every call to
belong to this account (:mod:`amiforge.aws.artifacts`), then creates or updates the stack and waits for a terminal state. A failed
stack raises :class:`StackFailed` listing each failed resource and its reason.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from amiforge.aws import artifacts
from amiforge.aws import cloudformation as cfn_api
from amiforge.aws import logs as logs_api
from amiforge.aws import tables as tables_api
from amiforge.aws.artifacts import ArtifactBucket
from amiforge.aws.catalog import Catalog
from amiforge.aws.in_flight import InFlight
from amiforge.aws.session import AwsContext
from amiforge.core.stack_parameters import ParameterChange, plan_parameters
from amiforge.deploy import machine
from amiforge.deploy.bundle import build_bundle
from amiforge.errors import InvalidInput, NotFound, StackFailed

TEMPLATE_BODY_LIMIT = 51_200
IN_PROGRESS = "_IN_PROGRESS"
GOOD_END = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE"}

Progress = Callable[[str], None]


def template_text() -> str:
    """The template as deployed: template.yaml with the assembled state machine inlined."""
    return machine.inline(resources.files("amiforge.deploy").joinpath("template.yaml").read_text())


class _AnyTagLoader(yaml.SafeLoader):
    """Reads the template's plain structure; intrinsic tags (!Ref, !Sub ...) become None."""


_AnyTagLoader.add_multi_constructor("!", lambda _loader, _suffix, _node: None)


def template_parameters(body: str | None = None) -> dict[str, str | None]:
    """The template's parameters and their defaults, as CloudFormation reports values."""
    declared = yaml.load(body or template_text(), Loader=_AnyTagLoader)["Parameters"]
    return {name: None if spec.get("Default") is None else str(spec["Default"])
            for name, spec in declared.items()}


@dataclass(frozen=True)
class Deployed:
    outputs: dict[str, str]
    changes: tuple[ParameterChange, ...]
    reattached: dict[str, str]  # template parameter -> retained table the stack now uses


# The tag the template puts on each table, and the parameter that re-attaches it.
TABLE_TAG = "amiforge:table"
RETAINED_PARAMETERS = {"catalog": "RetainedCatalogTable", "recipes": "RetainedRecipesTable"}


def retained_tables(aws: AwsContext, stack: str) -> dict[str, str]:
    """Tables a destroyed stack named ``stack`` retained: {template parameter: table}.

    CloudFormation names a table ``<stack>-<logical id>-<suffix>``; the tags
    ``amiforge:stack`` (exactly this stack) and ``amiforge:table`` confirm which is which.
    """
    ddb = aws.client("dynamodb")
    found: dict[str, list[str]] = {}
    for name in tables_api.names_starting(ddb, f"{stack}-"):
        tags = tables_api.tags_of(ddb, name)
        parameter = RETAINED_PARAMETERS.get(tags.get(TABLE_TAG, ""))
        if parameter and tags.get("amiforge:stack") == stack:
            found.setdefault(parameter, []).append(name)
    for parameter, tables in found.items():
        if len(tables) > 1:
            raise InvalidInput(f"stack {stack}: several retained tables could be "
                               f"{parameter}: {', '.join(sorted(tables))}",
                               hint=f"choose one with -p {parameter}=TABLE")
    return {parameter: tables[0] for parameter, tables in found.items()}


_LOG_GROUP = re.compile(r"LogGroupName: !Sub /aws/lambda/\$\{AWS::StackName\}-([a-z0-9-]+)")


def leftover_log_groups(aws: AwsContext, stack: str, body: str) -> list[str]:
    """The template's function log groups that exist although the stack does not.

    A function that a destroyed stack's last events still invoked (a builder's
    state-change event, a stopped execution's woken task) makes Lambda recreate its log
    group after CloudFormation deleted it; creating the stack again would then fail
    with "log group already exists". Only these exact names are looked at.
    """
    names = [f"/aws/lambda/{stack}-{suffix}" for suffix in sorted(set(_LOG_GROUP.findall(body)))]
    return logs_api.existing_groups(aws.client("logs"), names)


def _table_exists(aws: AwsContext, table: str) -> bool:
    return tables_api.exists(aws.client("dynamodb"), table)


def _retained_values(aws: AwsContext, stack: str, existing: dict[str, Any] | None,
                     overrides: dict[str, str]) -> dict[str, str]:
    """What the Retained* parameters must be: found when the stack is created (or given
    then with -p), and never changed afterwards (that would swap the data for another)."""
    given = {k: overrides.pop(k) for k in RETAINED_PARAMETERS.values() if k in overrides}
    if existing is None:
        for key, table in given.items():
            if table and not _table_exists(aws, table):
                raise InvalidInput(f"-p {key}={table}: there is no DynamoDB table {table} "
                                   f"in {aws.resolved_region}",
                                   hint="name a table a destroyed amiforge stack retained")
        values = dict.fromkeys(RETAINED_PARAMETERS.values(), "")
        values.update(retained_tables(aws, stack))
        values.update(given)
        return values
    current = {p["ParameterKey"]: p.get("ParameterValue", "")
               for p in existing.get("Parameters", [])}
    values = {k: current.get(k, "") for k in RETAINED_PARAMETERS.values()}
    for key, value in given.items():
        if value != values[key]:
            raise InvalidInput(f"-p {key}={value}: the stack already uses "
                               f"{values[key] or 'the table it created'}; the tables of a "
                               "stack can only be chosen when it is created")
    return values


def artifact_bucket(aws: AwsContext) -> ArtifactBucket:
    """The account's artifact bucket in this region, checked to be ours and protected
    (:mod:`amiforge.aws.artifacts`): a bucket owned elsewhere stops the deploy."""
    account = artifacts.caller_account(aws.client("sts"))
    region = aws.resolved_region
    bucket = ArtifactBucket(aws.client("s3"), artifacts.bucket_name(account, region),
                            account, region)
    bucket.ensure()
    return bucket


def describe_stack(aws: AwsContext, stack: str) -> dict[str, Any] | None:
    return cfn_api.describe(aws.client("cloudformation"), stack)


def stack_outputs(aws: AwsContext, stack: str) -> dict[str, str]:
    described = describe_stack(aws, stack)
    if described is None or described["StackStatus"] in {"DELETE_COMPLETE"}:
        raise NotFound(f"stack {stack!r} not found in {aws.resolved_region}",
                       hint="run `amiforge deploy` first, or pass --stack/--region")
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def failure_reasons(aws: AwsContext, stack: str) -> list[str]:
    return cfn_api.failure_reasons(aws.client("cloudformation"), stack, limit=None,
                                   with_type=True)


def wait_for(aws: AwsContext, stack: str, progress: Progress, poll: float = 1.0,
             timeout: float = 3600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = None
    while True:
        described = describe_stack(aws, stack)
        status = described["StackStatus"] if described else "DELETE_COMPLETE"
        if status != last:
            progress(f"{stack}: {status}")
            last = status
        if not status.endswith(IN_PROGRESS):
            if status not in GOOD_END:
                reasons = failure_reasons(aws, stack) if described else []
                raise StackFailed(f"stack {stack} ended {status}: " +
                                  ("; ".join(reasons) or "no failed resource reported"))
            return described or {}
        if time.monotonic() > deadline:
            raise StackFailed(f"stack {stack} still {status} after {timeout:.0f} s")
        time.sleep(poll)


def deploy(aws: AwsContext, stack: str, parameters: Mapping[str, str] | None = None,
           progress: Progress = lambda _m: None) -> dict[str, str]:
    return deploy_stack(aws, stack, parameters, progress=progress).outputs


def deploy_stack(aws: AwsContext, stack: str, parameters: Mapping[str, str] | None = None, *,
                 reset_parameters: bool = False,
                 progress: Progress = lambda _m: None) -> Deployed:
    """Create or update ``stack``. Parameters not given keep the stack's current values
    (``reset_parameters``: they return to the defaults); the result says what changed."""
    body = template_text()
    declared = template_parameters(body)
    existing = describe_stack(aws, stack)
    if existing and existing["StackStatus"] == "ROLLBACK_COMPLETE":
        # A first create that failed cannot be updated: remove it and start again.
        progress(f"{stack}: removing the failed first attempt (ROLLBACK_COMPLETE)")
        cfn_api.delete(aws.client("cloudformation"), stack)
        wait_for(aws, stack, progress)
        existing = None
    previous = ({p["ParameterKey"]: p.get("ParameterValue", "")
                 for p in existing.get("Parameters", [])} if existing else None)
    overrides = dict(parameters or {})
    retained = _retained_values(aws, stack, existing, overrides)
    reattached = {k: v for k, v in retained.items() if v} if existing is None else {}
    for parameter, table in sorted(reattached.items()):
        progress(f"{stack}: re-attaching the retained table {table} ({parameter})")
    bundle = build_bundle()
    artifacts_bucket = artifact_bucket(aws)
    bucket, key = artifacts_bucket.bucket, bundle.key
    uploaded = artifacts_bucket.upload(key, bundle.data)
    progress(f"bundle s3://{bucket}/{key} ({len(bundle.data) // 1024} KiB"
             f"{'' if uploaded else ', already there'})")
    plan = plan_parameters(declared, previous, overrides,
                           managed={"BundleBucket": bucket, "BundleKey": key, **retained},
                           reset=reset_parameters)
    template: dict[str, str] = {"TemplateBody": body}
    if len(body.encode()) > TEMPLATE_BODY_LIMIT:
        template_key = f"templates/{bundle.sha256[:16]}.yaml"
        artifacts_bucket.upload(template_key, body.encode())
        # The regional URL form: CloudFormation reads it from the stack's own region.
        template = {"TemplateURL": f"https://{bucket}.s3.{aws.resolved_region}.amazonaws.com/"
                                   f"{template_key}"}
    cfn = aws.client("cloudformation")
    common = {"StackName": stack, **template, "Capabilities": ["CAPABILITY_IAM"],
              "Parameters": [{"ParameterKey": k, "ParameterValue": str(v)}
                             for k, v in sorted(plan.values.items())],
              "Tags": [{"Key": "amiforge:stack", "Value": stack}]}
    if existing is None:
        for name in leftover_log_groups(aws, stack, body):
            progress(f"{stack}: removing the log group {name} a destroyed stack's function "
                     "recreated (the new stack makes its own)")
            logs_api.delete_group(aws.client("logs"), name)
        cfn_api.create_stack(cfn, {**common, "OnFailure": "ROLLBACK"})
    elif not cfn_api.update_stack(cfn, common):
        progress(f"{stack}: already up to date")
    wait_for(aws, stack, progress)
    outputs = stack_outputs(aws, stack)
    if outputs.get("CatalogTableName"):
        # Records an older version left in flight get their #in-flight marker (once per
        # table: aws/in_flight.py), so the sweeper's bounded read still finds them.
        marked = InFlight(Catalog(aws.client("dynamodb"), outputs["CatalogTableName"])
                          ).backfill()
        if marked:
            progress(f"{stack}: noted {marked} build(s) in flight for the sweeper")
    return Deployed(outputs=outputs, changes=plan.changes, reattached=reattached)


def destroy(aws: AwsContext, stack: str, progress: Progress = lambda _m: None) -> None:
    if describe_stack(aws, stack) is None:
        raise NotFound(f"stack {stack!r} not found in {aws.resolved_region}")
    cfn_api.delete(aws.client("cloudformation"), stack)
    wait_for(aws, stack, progress)


def delete_table(aws: AwsContext, table: str) -> bool:
    """Delete a DynamoDB table (`destroy --delete-data`); False if it was already gone."""
    return tables_api.delete(aws.client("dynamodb"), table)


def stacks_using_bucket(aws: AwsContext, bucket: str) -> list[str]:
    """Live stacks of the region whose BundleBucket parameter is ``bucket``."""
    return cfn_api.stacks_with_parameter(aws.client("cloudformation"), "BundleBucket", bucket)


def artifact_bucket_name(aws: AwsContext) -> str:
    """The name of this account's artifact bucket in this region (nothing is created)."""
    return artifacts.bucket_name(artifacts.caller_account(aws.client("sts")),
                                 aws.resolved_region)


def delete_bucket(aws: AwsContext, bucket: str) -> bool:
    """Empty and delete ``bucket`` if this account owns it; False if it did not exist."""
    return artifacts.delete_bucket(aws.client("s3"), bucket,
                                   artifacts.caller_account(aws.client("sts")))
