"""aws/cfn_response.py: the custom resource's answer PUT to a pre-signed URL of the local
cloud's S3 (as on AWS), refused URLs, and retries bounded by the time left."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import pytest

from amiforge.aws import cfn_response
from amiforge.aws.session import AwsContext


def test_the_answer_lands_at_the_presigned_url(aws: AwsContext,
                                               unique: Callable[[str], str]) -> None:
    s3 = aws.client("s3")
    bucket = unique("responses")
    s3.create_bucket(Bucket=bucket)
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "r"},
                                    ExpiresIn=300)
    body = {"Status": "SUCCESS", "PhysicalResourceId": "ami-1", "Data": {"ImageId": "ami-1"}}
    assert cfn_response.send(url, body) == 200
    assert json.loads(s3.get_object(Bucket=bucket, Key="r")["Body"].read()) == body


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(cfn_response.ResponseNotDelivered, match="not an http"):
        cfn_response.send("file:///etc/passwd", {})


def test_a_refused_answer_is_not_retried(aws: AwsContext) -> None:
    url = aws.client("s3").generate_presigned_url(
        "put_object", Params={"Bucket": "amiforge-no-such-bucket", "Key": "r"})
    sleeps: list[float] = []
    with pytest.raises(cfn_response.ResponseNotDelivered, match="after 1 attempt"):
        cfn_response.send(url, {}, sleep=sleeps.append)
    assert sleeps == []


def test_an_unreachable_url_is_retried_within_the_time_left() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    with pytest.raises(cfn_response.ResponseNotDelivered, match="after 3 attempt"):
        cfn_response.send(f"http://127.0.0.1:{port}/r", {}, attempts=5, backoff=1.0,
                          within=1.5, clock=lambda: now[0], sleep=sleep)
    # The second pause is cut to leave a try its minimum time; then none is left.
    assert sleeps == [pytest.approx(1.0), pytest.approx(1.5 - 1.0 - cfn_response.MIN_TRY_SECONDS)]
    assert cfn_response.retry_sleep(3, 1.0, 10.0) == 4.0
    assert cfn_response.retry_sleep(1, 1.0, 0.1) is None
