"""aws/identity.py: who calls, recorded on a rollback or release. The caller's ARN from
STS on the local cloud; the local user name when STS refuses or cannot be reached, so a
rollback is never refused for want of a name."""

from __future__ import annotations

import getpass
from typing import Any

import boto3
from botocore.config import Config
from botocore.stub import Stubber

from amiforge.aws.identity import caller


def test_the_caller_is_the_arn_sts_answers(local_cloud: Any) -> None:
    sts = boto3.client("sts")
    assert caller(sts) == sts.get_caller_identity()["Arn"]
    assert caller(sts).startswith("arn:aws:")


def test_a_refusing_sts_falls_back_to_the_local_user(local_cloud: Any) -> None:
    sts = boto3.client("sts")
    with Stubber(sts) as stub:
        stub.add_client_error("get_caller_identity", service_error_code="AccessDenied",
                              http_status_code=403)
        assert caller(sts) == f"local user {getpass.getuser()}"
        stub.assert_no_pending_responses()


def test_an_unreachable_sts_falls_back_to_the_local_user() -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
                       aws_access_key_id="x", aws_secret_access_key="x",
                       config=Config(retries={"max_attempts": 1, "mode": "standard"},
                                     connect_timeout=1))
    assert caller(sts) == f"local user {getpass.getuser()}"
