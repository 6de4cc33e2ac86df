"""The artifact bucket (Lambda bundle, large templates): S3 and STS calls for deploy.

The bucket's name is predictable (``amiforge-artifacts-<account>-<region>``), so someone
else can register it first and wait for our code. Every call here therefore passes
``ExpectedBucketOwner`` (S3 answers 403 if the bucket is not this account's), the bucket
is checked with HeadBucket before any use, and its protections are put in place on every
deploy, whether deploy made the bucket or found it: public-access block, default
encryption, versioning and a policy that refuses any request not over TLS. An object
whose key exists is re-uploaded unless its ETag proves the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from amiforge.aws.errors import ClientError, aws_call, error_code, translate
from amiforge.errors import InvalidInput

MISSING = frozenset({"404", "NoSuchBucket", "NotFound"})
FOREIGN = frozenset({"403", "AccessDenied", "Forbidden"})


class BucketNotOurs(InvalidInput):
    """The artifact bucket exists but belongs to another account (or refuses us)."""


def caller_account(sts: Any) -> str:
    """The account id of the credentials in use."""
    with aws_call("GetCallerIdentity"):
        return str(sts.get_caller_identity()["Account"])


def bucket_name(account: str, region: str) -> str:
    return f"amiforge-artifacts-{account}-{region}"


def partition_of(region: str) -> str:
    """The ARN partition of ``region``: aws-cn in China, aws-us-gov in GovCloud."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("us-iso-"):
        return "aws-iso"
    if region.startswith("us-isob-"):
        return "aws-iso-b"
    return "aws"


def tls_only_policy(bucket: str, region: str = "us-east-1") -> dict[str, Any]:
    """Deny every request that does not come over TLS (AWS's documented pattern)."""
    arn = f"arn:{partition_of(region)}:s3:::{bucket}"
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}


class ArtifactBucket:
    """One bucket, every call made with ``ExpectedBucketOwner=account``."""

    def __init__(self, s3: Any, bucket: str, account: str, region: str) -> None:
        self.s3, self.bucket, self.account, self.region = s3, bucket, account, region

    def _refused(self) -> BucketNotOurs:
        return BucketNotOurs(
            f"artifact bucket {self.bucket} exists but does not belong to account "
            f"{self.account}: refusing to deploy code from or into it",
            hint="delete it if it is yours in another account, or deploy with another "
                 "account/region; never point amiforge at a bucket you do not own")

    def exists(self) -> bool:
        """True if the bucket is ours; False if there is none; raises if it is not ours."""
        try:
            self.s3.head_bucket(Bucket=self.bucket, ExpectedBucketOwner=self.account)
        except ClientError as err:
            if error_code(err) in MISSING:
                return False
            if error_code(err) in FOREIGN:
                raise self._refused() from err
            raise translate(err, "HeadBucket") from err
        return True

    def ensure(self) -> None:
        """Make the bucket if there is none, check it is ours, then enforce protections."""
        if not self.exists():
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            try:
                self.s3.create_bucket(**kwargs)
            except ClientError as err:
                # Someone else registered the name between our HeadBucket and now.
                if error_code(err) == "BucketAlreadyExists":
                    raise self._refused() from err
                if error_code(err) != "BucketAlreadyOwnedByYou":
                    raise translate(err, "CreateBucket") from err
            if not self.exists():
                raise translate(ClientError({"Error": {"Code": "NoSuchBucket",
                                                       "Message": self.bucket}},
                                            "HeadBucket"), "HeadBucket")
        self.protect()

    def protect(self) -> None:
        """Public-access block, encryption, versioning, TLS-only policy: every deploy."""
        owner = {"Bucket": self.bucket, "ExpectedBucketOwner": self.account}
        with aws_call("PutPublicAccessBlock"):
            self.s3.put_public_access_block(**owner, PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True,
                "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        with aws_call("PutBucketEncryption"):
            self.s3.put_bucket_encryption(**owner, ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                           "BucketKeyEnabled": True}]})
        with aws_call("PutBucketVersioning"):
            self.s3.put_bucket_versioning(**owner,
                                          VersioningConfiguration={"Status": "Enabled"})
        with aws_call("PutBucketPolicy"):
            self.s3.put_bucket_policy(**owner,
                                      Policy=json.dumps(tls_only_policy(self.bucket, self.region)))

    def holds(self, key: str, data: bytes) -> bool:
        """True if ``key`` exists with exactly ``data`` (its ETag is the bytes' MD5)."""
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key,
                                       ExpectedBucketOwner=self.account)
        except ClientError as err:
            if error_code(err) in {"404", "NoSuchKey", "NotFound"}:
                return False
            if error_code(err) in FOREIGN:
                raise self._refused() from err
            raise translate(err, "HeadObject") from err
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        return str(head.get("ETag", "")).strip('"') == md5

    def upload(self, key: str, data: bytes) -> bool:
        """Put ``data`` at ``key`` unless it is already there byte for byte; True if put.

        A content-addressed key that exists is not proof of its content (anyone with
        write access could have put other bytes there), so the ETag is compared; an
        object encrypted with KMS has no MD5 ETag and is simply uploaded again.
        """
        if self.holds(key, data):
            return False
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        with aws_call("PutObject"):
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentMD5=md5,
                               ExpectedBucketOwner=self.account)
        return True


def put_object(s3: Any, *, bucket: str, owner: str, key: str, data: bytes) -> None:
    """Put ``data`` at ``key`` in ``bucket``, only if ``owner`` owns the bucket, with its
    MD5 so S3 refuses bytes damaged on the way (a build stack's large template)."""
    md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
    with aws_call("PutObject"):
        s3.put_object(Bucket=bucket, Key=key, Body=data, ContentMD5=md5,
                      ExpectedBucketOwner=owner)


def object_url(bucket: str, region: str, key: str) -> str:
    """The object's virtual-hosted HTTPS URL, as CloudFormation's TemplateURL takes it."""
    domain = "amazonaws.com.cn" if partition_of(region) == "aws-cn" else "amazonaws.com"
    return f"https://{bucket}.s3.{region}.{domain}/{key}"


def delete_bucket(s3: Any, bucket: str, owner: str) -> bool:
    """Empty (every object version) and delete ``bucket``, only if ``owner`` owns it
    (ExpectedBucketOwner on every call); False if it did not exist."""
    try:
        for page in s3.get_paginator("list_object_versions").paginate(
                Bucket=bucket, ExpectedBucketOwner=owner):
            doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                      for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            if doomed:
                with aws_call("DeleteObjects"):
                    s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True},
                                      ExpectedBucketOwner=owner)
        s3.delete_bucket(Bucket=bucket, ExpectedBucketOwner=owner)
    except ClientError as err:
        if error_code(err) == "NoSuchBucket":
            return False
        raise translate(err, "DeleteBucket") from err
    return True
