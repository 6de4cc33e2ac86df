"""Put the amiforge stack into an account: upload the bundle, create or update, wait.

Plan then execute, like every deploy tool worth imitating: :func:`deploy` computes the
bundle (content-addressed key, so changed code rolls out; an existing key is re-uploaded
unless its ETag proves the same bytes) into the artifact bucket, checked on every call to
belong to this account (:mod:`amiforge.aws.artifacts`), then creates or updates the stack and waits for a terminal state. A failed
stack raises :class:`StackFailed` listing each failed resource and its reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from importlib import resources

from botocore.exceptions import ClientError

from amiforge.aws import artifacts
from amiforge.aws.artifacts import ArtifactBucket
from amiforge.aws.errors import aws_call, translate
from amiforge.aws.session import AwsContext
from amiforge.deploy.bundle import build_bundle
from amiforge.errors import NotFound, StackFailed

TEMPLATE_BODY_LIMIT = 51_200
IN_PROGRESS = "_IN_PROGRESS"
GOOD_END = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE"}

Progress = Callable[[str], None]


def template_text() -> str:
    return resources.files("amiforge.deploy").joinpath("template.yaml").read_text()


def artifact_bucket(aws: AwsContext) -> ArtifactBucket:
    """The account's artifact bucket in this region, checked to be ours and protected
    (:mod:`amiforge.aws.artifacts`): a bucket owned elsewhere stops the deploy."""
    account = artifacts.caller_account(aws.client("sts"))
    region = aws.resolved_region
    bucket = ArtifactBucket(aws.client("s3"), artifacts.bucket_name(account, region),
                            account, region)
    bucket.ensure()
    return bucket


def describe_stack(aws: AwsContext, stack: str) -> dict | None:
    try:
        stacks = aws.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except ClientError as err:
        if "does not exist" in str(err):
            return None
        raise translate(err, "DescribeStacks") from err
    return stacks[0] if stacks else None


def stack_outputs(aws: AwsContext, stack: str) -> dict[str, str]:
    described = describe_stack(aws, stack)
    if described is None or described["StackStatus"] in {"DELETE_COMPLETE"}:
        raise NotFound(f"stack {stack!r} not found in {aws.resolved_region}",
                       hint="run `amiforge deploy` first, or pass --stack/--region")
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def failure_reasons(aws: AwsContext, stack: str) -> list[str]:
    events = aws.client("cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    return [f"{e['LogicalResourceId']} ({e['ResourceType']}): "
            f"{e.get('ResourceStatusReason', e['ResourceStatus'])}"
            for e in events if e["ResourceStatus"].endswith("_FAILED")]


def wait_for(aws: AwsContext, stack: str, progress: Progress, poll: float = 1.0,
             timeout: float = 3600) -> dict:
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
    bundle = build_bundle()
    artifacts_bucket = artifact_bucket(aws)
    bucket, key = artifacts_bucket.bucket, bundle.key
    uploaded = artifacts_bucket.upload(key, bundle.data)
    progress(f"bundle s3://{bucket}/{key} ({len(bundle.data) // 1024} KiB"
             f"{'' if uploaded else ', already there'})")
    params = {"BundleBucket": bucket, "BundleKey": key, **(parameters or {})}
    body = template_text()
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
                             for k, v in sorted(params.items())],
              "Tags": [{"Key": "amiforge:stack", "Value": stack}]}
    existing = describe_stack(aws, stack)
    if existing and existing["StackStatus"] == "ROLLBACK_COMPLETE":
        # A first create that failed cannot be updated: remove it and start again.
        progress(f"{stack}: removing the failed first attempt (ROLLBACK_COMPLETE)")
        cfn.delete_stack(StackName=stack)
        wait_for(aws, stack, progress)
        existing = None
    if existing is None:
        with aws_call("CreateStack"):
            cfn.create_stack(**common, OnFailure="ROLLBACK")
    else:
        try:
            cfn.update_stack(**common)
        except ClientError as err:
            if "No updates are to be performed" not in str(err):
                raise translate(err, "UpdateStack") from err
            progress(f"{stack}: already up to date")
    wait_for(aws, stack, progress)
    return stack_outputs(aws, stack)


def destroy(aws: AwsContext, stack: str, progress: Progress = lambda _m: None) -> None:
    if describe_stack(aws, stack) is None:
        raise NotFound(f"stack {stack!r} not found in {aws.resolved_region}")
    with aws_call("DeleteStack"):
        aws.client("cloudformation").delete_stack(StackName=stack)
    wait_for(aws, stack, progress)
