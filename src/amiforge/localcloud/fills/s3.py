"""S3 fills: what deploy meets. Nothing here knows amiforge.

**ExpectedBucketOwner.** AWS refuses any bucket or object request whose
``x-amz-expected-bucket-owner`` header names an account other than the bucket's owner:
403 ``AccessDenied`` (HeadBucket and HeadObject: a bare 403). That header is how a
client makes sure it is not writing to, or reading code from, a bucket someone else
registered under a predictable name. moto ignores the header and serves the request.
Here the bucket's owning account (moto keeps it in ``s3_backends.bucket_accounts``) is
compared with the header before the request is served; a request without the header,
or for a bucket that does not exist, is served as before.

**Bucket policies conditioned on ``aws:SecureTransport``.** moto ignores the ``Bool``
condition operator, so AWS's documented TLS-only policy (Deny ``s3:*`` when
``aws:SecureTransport`` is ``false``) denies every request. Clients reach the emulator over
plain HTTP on 127.0.0.1 where they would reach AWS's endpoints over TLS (the SDKs always
use HTTPS with AWS), so here every request counts as secure transport: a statement whose
``Bool`` condition on ``aws:SecureTransport`` does not hold for it does not apply, as on
AWS. Other conditions are left to moto.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from amiforge.localcloud.fills import Fill

HEADER = "x-amz-expected-bucket-owner"
# The transport every request to the emulator stands for (see the module docstring).
REQUEST_CONTEXT = {"aws:securetransport": "true"}
def _guarded(original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` (called inside moto's S3ClientError handling) behind the owner check."""

    def method(self: Any, request: Any, full_url: str) -> Any:
        from moto.s3.exceptions import S3AccessDeniedError
        from moto.s3.models import s3_backends

        expected = request.headers.get(HEADER)
        if expected:
            owner = s3_backends.bucket_accounts.get(
                self.parse_bucket_name_from_url(request, full_url))
            if owner is not None and owner[1] != expected:
                raise S3AccessDeniedError()
        return original(self, request, full_url)

    return method


def applies(statement: dict[str, Any]) -> bool:
    """False if the statement's Bool conditions on known keys do not hold for a request."""
    for key, expected in ((statement.get("Condition") or {}).get("Bool") or {}).items():
        actual = REQUEST_CONTEXT.get(key.lower())
        values = expected if isinstance(expected, list) else [expected]
        if actual is not None and actual not in [str(v).lower() for v in values]:
            return False
    return True


def _conditioned(original: Callable[..., Any]) -> Callable[..., Any]:
    """``FakeBucket.get_permission`` over the statements that apply to the request."""

    def get_permission(self: Any, action: str, resource: str) -> Any:
        from moto.iam.access_control import PermissionResult

        if self.policy is None:
            return original(self, action, resource)
        policy = json.loads(self.policy)
        statements = policy.get("Statement") or []
        statements = statements if isinstance(statements, list) else [statements]
        kept = [s for s in statements if applies(s)]
        if not kept:
            return PermissionResult.NEUTRAL
        saved = self.policy
        self.policy = json.dumps({**policy, "Statement": kept}).encode()
        try:
            return original(self, action, resource)
        finally:
            self.policy = saved

    return get_permission


_RESPONSE = "moto.s3.responses:S3Response"

FILLS = [
    Fill("s3.expected-bucket-owner:bucket", _RESPONSE, "_bucket_response", _guarded, "15b194a31b24"),
    Fill("s3.expected-bucket-owner:key", _RESPONSE, "_key_response", _guarded, "eb67586ff76b"),
    Fill("s3.secure-transport-condition", "moto.s3.models:FakeBucket", "get_permission",
         _conditioned, "7571412a3495"),
]
