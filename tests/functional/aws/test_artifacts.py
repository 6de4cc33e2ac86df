"""The artifact bucket: ours on every call, protected on every deploy, content verified.

Against the local cloud, whose S3 enforces ExpectedBucketOwner (localcloud/s3_gaps.py).
The squatting tests use their own region so that no other test's bucket is in the way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from amiforge.aws import artifacts
from amiforge.aws.artifacts import ArtifactBucket, BucketNotOurs
from amiforge.aws.session import AwsContext
from amiforge.cli.main import cli
from amiforge.deploy import stack as stack_api

OTHER_ACCOUNT = "210987654321"


def other_account_s3(region: str) -> Any:
    credentials = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/squatter",
        RoleSessionName="squat")["Credentials"]
    return boto3.client("s3", region_name=region,
                        aws_access_key_id=credentials["AccessKeyId"],
                        aws_secret_access_key=credentials["SecretAccessKey"],
                        aws_session_token=credentials["SessionToken"])


@pytest.fixture
def account(local_cloud: Any) -> str:
    return artifacts.caller_account(boto3.client("sts"))


@pytest.fixture
def squatted(local_cloud: Any, account: str) -> Iterator[tuple[str, str]]:
    """(region, bucket): our predictable bucket name, registered by another account."""
    region = "eu-north-1"
    bucket = artifacts.bucket_name(account, region)
    theirs = other_account_s3(region)
    theirs.create_bucket(Bucket=bucket,
                         CreateBucketConfiguration={"LocationConstraint": region})
    theirs.put_object(Bucket=bucket, Key="bundles/evil.zip", Body=b"not our code")
    yield region, bucket
    theirs.delete_object(Bucket=bucket, Key="bundles/evil.zip")
    theirs.delete_bucket(Bucket=bucket)


def recorded_calls(s3: Any) -> list[tuple[str, dict]]:
    calls: list[tuple[str, dict]] = []
    s3.meta.events.register("provide-client-params.s3.*",
                            lambda params, model, **_: calls.append((model.name, params)))
    return calls


def protections(s3: Any, bucket: str) -> dict[str, Any]:
    return {
        "block": s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"],
        "encryption": s3.get_bucket_encryption(Bucket=bucket)[
            "ServerSideEncryptionConfiguration"]["Rules"][0][
            "ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"],
        "versioning": s3.get_bucket_versioning(Bucket=bucket).get("Status"),
        "policy": json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]),
    }


def assert_protected(s3: Any, bucket: str) -> None:
    found = protections(s3, bucket)
    assert all(found["block"].values()) and len(found["block"]) == 4
    assert found["encryption"] == "AES256"
    assert found["versioning"] == "Enabled"
    (deny,) = found["policy"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_a_new_bucket_is_made_protected_with_the_owner_on_every_call(account: str) -> None:
    s3 = boto3.client("s3", region_name="eu-west-3")
    calls = recorded_calls(s3)
    bucket = ArtifactBucket(s3, artifacts.bucket_name(account, "eu-west-3"), account,
                            "eu-west-3")
    bucket.ensure()
    assert bucket.upload("bundles/a.zip", b"code") is True
    calls = list(calls)  # amiforge's calls; the checks below make their own
    assert_protected(s3, bucket.bucket)
    names = [name for name, _ in calls]
    assert names[0] == "HeadBucket" and "CreateBucket" in names and "PutObject" in names
    # CreateBucket cannot take the header: the HeadBucket after it checks the owner.
    assert [n for n, params in calls if params.get("ExpectedBucketOwner") != account] == [
        "CreateBucket"]
    assert names[names.index("CreateBucket") + 1] == "HeadBucket"


def test_a_found_bucket_gets_the_protections_too(account: str) -> None:
    s3 = boto3.client("s3", region_name="eu-west-2")
    name = artifacts.bucket_name(account, "eu-west-2")
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
    ArtifactBucket(s3, name, account, "eu-west-2").ensure()
    assert_protected(s3, name)


def test_an_existing_key_is_replaced_unless_it_holds_the_same_bytes(account: str) -> None:
    s3 = boto3.client("s3", region_name="eu-west-3")
    bucket = ArtifactBucket(s3, artifacts.bucket_name(account, "eu-west-3"), account,
                            "eu-west-3")
    bucket.ensure()
    s3.put_object(Bucket=bucket.bucket, Key="bundles/b.zip", Body=b"tampered")
    assert bucket.upload("bundles/b.zip", b"the real bundle") is True
    assert s3.get_object(Bucket=bucket.bucket, Key="bundles/b.zip")["Body"].read() == \
        b"the real bundle"
    assert bucket.upload("bundles/b.zip", b"the real bundle") is False


def test_a_bucket_owned_elsewhere_is_refused_naming_it(squatted: tuple[str, str],
                                                       account: str) -> None:
    region, name = squatted
    s3 = boto3.client("s3", region_name=region)
    calls = recorded_calls(s3)
    with pytest.raises(BucketNotOurs, match=f"artifact bucket {name} exists but does not "
                                            f"belong to account {account}"):
        ArtifactBucket(s3, name, account, region).ensure()
    assert [n for n, _ in calls] == ["HeadBucket"]  # nothing read from or written to it


def test_deploy_refuses_a_squatted_bucket_before_anything_else(squatted: tuple[str, str],
                                                               local_cloud: Any) -> None:
    region, name = squatted
    aws = AwsContext(region=region, endpoint_url=local_cloud.endpoint)
    with pytest.raises(BucketNotOurs):
        stack_api.deploy(aws, "squat-test")
    assert stack_api.describe_stack(aws, "squat-test") is None
    result = CliRunner().invoke(cli, ["--endpoint-url", local_cloud.endpoint, "--region",
                                      region, "--stack", "squat-test", "deploy"])
    assert result.exit_code == 2
    assert name in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
