"""The files of recipes' ``build.files`` in the stack's artifact bucket (S3).

``publish`` puts each file under its content hash (``assets/sha256/<hex>``,
:func:`amiforge.core.assets.object_key`), once: a key already there with the right size
is skipped, and S3 checks each upload against its sha256 (``ChecksumSHA256``), so the
key cannot hold other bytes than its name says. The Launch step presigns short-lived
GET URLs for a build's files and writes their list for the builder (one object per
launch under ``launches/``), then presigns that list's URL for the user data: the builder
fetches everything over HTTPS with no AWS credentials of its own.

Presigning makes no AWS call (it signs locally with the caller's credentials), so the
caller's role must allow ``s3:GetObject`` on what it presigns, or the URL is refused.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

from amiforge.aws.errors import ClientError, aws_call, error_code, translate
from amiforge.core.assets import URL_SECONDS, Asset, object_key

_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


class AssetBucket:
    """Content-addressed files in one bucket; ``account`` (when known) is passed as
    ExpectedBucketOwner, so a bucket of the same name in another account is refused."""

    def __init__(self, s3: Any, bucket: str, account: str | None = None) -> None:
        self.s3, self.bucket = s3, bucket
        self._owner = {"ExpectedBucketOwner": account} if account else {}

    def holds(self, asset: Asset) -> bool:
        """True if the asset's key exists with the asset's size."""
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=object_key(asset.sha256),
                                       **self._owner)
        except ClientError as err:
            if error_code(err) in _MISSING:
                return False
            raise translate(err, "HeadObject") from err
        return int(head.get("ContentLength", -1)) == asset.size

    def upload(self, assets: Sequence[Asset], read: Callable[[Asset], bytes]) -> list[str]:
        """Upload each asset not already there (``read`` gives its bytes); returns the
        paths uploaded. Each body is checked against the asset's sha256 by S3."""
        uploaded = []
        for asset in assets:
            if self.holds(asset):
                continue
            data = read(asset)
            checksum = base64.b64encode(bytes.fromhex(asset.sha256)).decode("ascii")
            with aws_call("PutObject"):
                self.s3.put_object(Bucket=self.bucket, Key=object_key(asset.sha256),
                                   Body=data, ChecksumSHA256=checksum, **self._owner)
            uploaded.append(asset.path)
        return uploaded

    def presign(self, key: str, seconds: int = URL_SECONDS) -> str:
        """A GET URL for ``key`` that works for ``seconds`` without credentials."""
        with aws_call("GetObject"):
            return str(self.s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=seconds))

    def put_text(self, key: str, text: str) -> None:
        """Write one launch's list of URLs (private; the builder reads it presigned)."""
        with aws_call("PutObject"):
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=text.encode("utf-8"),
                               ContentType="text/plain", **self._owner)
