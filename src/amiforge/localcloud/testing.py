"""Small helpers for tests that drive the local cloud (no pytest import here)."""

from __future__ import annotations

import io
import json
import textwrap
import time
import zipfile
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

ASSUME_LAMBDA = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
})


def zip_bytes(files: dict[str, str | bytes]) -> bytes:
    """A zip holding ``files`` (name -> content); sources are dedented."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            if isinstance(content, str):
                content = textwrap.dedent(content)
            archive.writestr(name, content)
    return buffer.getvalue()


def lambda_role(iam: Any, name: str = "amiforge-test-lambda") -> str:
    """ARN of a role Lambda can assume (moto checks the role exists)."""
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        return str(iam.create_role(RoleName=name,
                                   AssumeRolePolicyDocument=ASSUME_LAMBDA)["Role"]["Arn"])


def create_function(lam: Any, iam: Any, name: str, source: str | dict[str, str | bytes], *,
                    handler: str = "app.handler", env: dict[str, str] | None = None,
                    timeout: int = 10) -> str:
    """Create a Python function from ``source`` (app.py) or a dict of files; its ARN."""
    files: dict[str, str | bytes] = {"app.py": source} if isinstance(source, str) else source
    response = lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=lambda_role(iam), Handler=handler,
        Code={"ZipFile": zip_bytes(files)}, Timeout=timeout,
        Environment={"Variables": env or {}})
    return str(response["FunctionArn"])


def wait_for(check: Callable[[], T | None], timeout: float = 15.0, interval: float = 0.1,
             what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def receive_all(sqs: Any, queue_url: str, count: int, timeout: float = 15.0) -> list[Any]:
    """Receive until ``count`` messages arrived (bodies parsed as JSON when they are)."""
    bodies: list[Any] = []

    def got_enough() -> bool:
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        for message in response.get("Messages", []):
            try:
                bodies.append(json.loads(message["Body"]))
            except ValueError:
                bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(bodies) >= count

    wait_for(got_enough, timeout, what=f"{count} messages on {queue_url}")
    return bodies


class LambdaContext:
    """The parts of Lambda's context object a handler reads, for calling one directly."""

    memory_limit_in_mb = 256
    aws_request_id = "local-test"

    def __init__(self, function_name: str = "amiforge-test", seconds_left: float = 30.0) -> None:
        self.function_name = function_name
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}")
        self._millis = int(seconds_left * 1000)

    def get_remaining_time_in_millis(self) -> int:
        return self._millis


def images_of_build(ec2: Any, build_id: str) -> list[dict[str, Any]]:
    """Images tagged ``amiforge:build-id`` = ``build_id``, asked of EC2 directly."""
    images: list[dict[str, Any]] = ec2.describe_images(Owners=["self"], Filters=[
        {"Name": "tag:amiforge:build-id", "Values": [build_id]}])["Images"]
    return images


def snapshots_of_build(ec2: Any, build_id: str) -> list[dict[str, Any]]:
    """Snapshots tagged ``amiforge:build-id`` = ``build_id``, asked of EC2 directly."""
    snapshots: list[dict[str, Any]] = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:amiforge:build-id", "Values": [build_id]}])["Snapshots"]
    return snapshots
