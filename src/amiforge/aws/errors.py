"""Turn botocore's ``ClientError`` into amiforge's own errors: the one module of aws/ that
imports botocore's exceptions (the adapters take ``ClientError`` from here, catch it only
to recognise an expected code, and hand everything else to :func:`translate`).

Throttling and eventual-consistency codes become :class:`TransientAwsError` so Step
Functions' Retry (which matches the Lambda ``errorType``) backs off and tries again;
everything else becomes :class:`AwsCallFailed` naming the operation and AWS's code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError

from amiforge.errors import AwsCallFailed, TransientAwsError

__all__ = ["THROTTLING_CODES", "ClientError", "aws_call", "error_code", "is_transient",
           "translate"]

THROTTLING_CODES = frozenset({
    "RequestLimitExceeded", "Throttling", "ThrottlingException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "RequestThrottled", "SlowDown",
    "ServiceUnavailable", "InternalError", "InternalFailure", "RequestTimeout",
})


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def is_transient(err: ClientError) -> bool:
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return error_code(err) in THROTTLING_CODES or (isinstance(status, int) and status >= 500)


def translate(err: ClientError, operation: str) -> Exception:
    message = str(err.response.get("Error", {}).get("Message", ""))
    if is_transient(err):
        return TransientAwsError(f"{operation}: {error_code(err)}: {message}")
    return AwsCallFailed(operation, error_code(err), message)


@contextmanager
def aws_call(operation: str) -> Iterator[None]:
    """``with aws_call("RunInstances"): ...`` re-raises ClientError as a domain error."""
    try:
        yield
    except ClientError as err:
        raise translate(err, operation) from err
