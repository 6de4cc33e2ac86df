"""S3 refuses a request whose ExpectedBucketOwner is not the bucket's owner, as AWS does
(localcloud/fills/s3.py)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

OTHER_ACCOUNT = "210987654321"


def other_account_s3() -> Any:
    """An S3 client whose credentials belong to another account (an assumed role)."""
    credentials = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/squatter",
        RoleSessionName="squat")["Credentials"]
    return boto3.client("s3", aws_access_key_id=credentials["AccessKeyId"],
                        aws_secret_access_key=credentials["SecretAccessKey"],
                        aws_session_token=credentials["SessionToken"])


@pytest.fixture
def own(local_cloud: Any) -> tuple[Any, str, str]:
    s3 = boto3.client("s3")
    bucket = f"own-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    account = boto3.client("sts").get_caller_identity()["Account"]
    return s3, bucket, account


def test_the_right_owner_is_served(own: tuple[Any, str, str]) -> None:
    s3, bucket, account = own
    s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=account)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ExpectedBucketOwner=account)
    assert s3.get_object(Bucket=bucket, Key="k", ExpectedBucketOwner=account)["Body"].read() \
        == b"x"
    s3.head_bucket(Bucket=bucket)  # no header: served as before


def test_another_owner_is_refused_on_bucket_and_object_calls(
        own: tuple[Any, str, str]) -> None:
    s3, bucket, _account = own
    with pytest.raises(ClientError) as head:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=OTHER_ACCOUNT)
    assert head.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as put:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", ExpectedBucketOwner=OTHER_ACCOUNT)
    assert put.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as policy:
        s3.put_bucket_versioning(Bucket=bucket, ExpectedBucketOwner=OTHER_ACCOUNT,
                                 VersioningConfiguration={"Status": "Enabled"})
    assert policy.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="k", ExpectedBucketOwner=OTHER_ACCOUNT)


def test_a_bucket_made_by_another_account_is_theirs(local_cloud: Any) -> None:
    bucket = f"squatted-{uuid.uuid4().hex[:12]}"
    other_account_s3().create_bucket(Bucket=bucket)
    mine = boto3.client("sts").get_caller_identity()["Account"]
    with pytest.raises(ClientError) as caught:
        boto3.client("s3").head_bucket(Bucket=bucket, ExpectedBucketOwner=mine)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    boto3.client("s3").head_bucket(Bucket=bucket, ExpectedBucketOwner=OTHER_ACCOUNT)


def tls_policy(bucket: str, secure: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": secure}}}]})


def test_a_tls_only_policy_lets_requests_through(own: tuple[Any, str, str]) -> None:
    s3, bucket, _account = own
    s3.put_bucket_policy(Bucket=bucket, Policy=tls_policy(bucket, "false"))
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_the_condition_is_evaluated_not_ignored(own: tuple[Any, str, str]) -> None:
    s3, bucket, _account = own
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_bucket_policy(Bucket=bucket, Policy=tls_policy(bucket, "true"))
    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket=bucket, Key="k")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    s3.delete_bucket_policy(Bucket=bucket)
