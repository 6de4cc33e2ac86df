"""The fault injector's view of a request, and AWS's error answers in each wire format.

:func:`describe_call` tells the service, operation and protocol of a request (and which
Lambda execution environment sent it); :func:`error_response` and
:func:`disabled_region_response` are what EC2, the query services and the JSON/REST
services answer when throttling, failing, or in a region not enabled for the account, so
botocore parses them as it would AWS's.
"""

from __future__ import annotations

import io
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

ENVIRONMENT_MARK = re.compile(r"\bapp/(lc-fn-[0-9a-f]+)")
_CREDENTIAL = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")
_ATTEMPT = re.compile(r"attempt=(\d+)")
READ_PREFIXES = ("Describe", "Get", "List", "Query", "Scan", "BatchGet")


@dataclass(frozen=True)
class Call:
    """What the injector knows of one request from a function."""

    service: str
    operation: str
    protocol: str            # ec2 | json | query | rest
    attempt: int
    environment: str | None  # the lc-fn-... marker of the calling execution environment

    @property
    def mutating(self) -> bool:
        return bool(self.operation) and not self.operation.startswith(READ_PREFIXES)


def describe_call(environ: dict[str, Any]) -> Call:
    """Service, operation and protocol of a request (reads a form body, and puts it back)."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = match.group(1) if match else "unknown"
    attempt_match = _ATTEMPT.search(environ.get("HTTP_AMZ_SDK_REQUEST", ""))
    marker = ENVIRONMENT_MARK.search(environ.get("HTTP_USER_AGENT", ""))
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        operation, protocol = target.rsplit(".", 1)[-1], "json"
    elif environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        operation = _form_action(environ)
        protocol = "ec2" if service == "ec2" else "query"
    else:
        operation, protocol = f"{environ.get('REQUEST_METHOD', '')} "\
                              f"{environ.get('PATH_INFO', '')}", "rest"
    return Call(service=service, operation=operation, protocol=protocol,
                attempt=int(attempt_match.group(1)) if attempt_match else 1,
                environment=marker.group(1) if marker else None)


def _form_action(environ: dict[str, Any]) -> str:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    values = parse_qs(body.decode("utf-8", errors="replace")).get("Action") or [""]
    return values[0]


def error_response(call: Call, *, server_error: bool) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status, headers, body) of AWS's throttling or internal error for this protocol."""
    request_id = str(uuid.uuid4())
    if call.protocol == "ec2":
        code, status = (("InternalError", "500 Internal Server Error") if server_error else
                        ("RequestLimitExceeded", "503 Service Unavailable"))
        message = ("An internal error has occurred." if server_error else
                   "Request limit exceeded.")
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
                f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
                f"<RequestID>{request_id}</RequestID></Response>")
        return status, _headers("text/xml", body, request_id), body.encode()
    if call.protocol == "query":
        code, kind, status = (("InternalFailure", "Receiver", "500 Internal Server Error")
                              if server_error else ("Throttling", "Sender", "400 Bad Request"))
        body = (f'<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code>'
                f"<Message>Rate exceeded</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>")
        return status, _headers("text/xml", body, request_id), body.encode()
    code, status = (("InternalFailure", "500 Internal Server Error") if server_error else
                    ("ThrottlingException", "400 Bad Request"))
    if call.protocol == "rest":
        code, status = (("ServiceException", "500 Internal Server Error") if server_error
                        else ("TooManyRequestsException", "429 Too Many Requests"))
    body = f'{{"__type": "{code}", "message": "Rate exceeded"}}'
    headers = _headers("application/x-amz-json-1.0", body, request_id)
    headers.append(("x-amzn-ErrorType", code))
    return status, headers, body.encode()


def disabled_region_response(call: Call) -> tuple[str, list[tuple[str, str]], bytes]:
    """AWS's answer in a region that is not enabled for the account (an opt-in region):
    the credentials are not valid there. Not retried by botocore."""
    request_id = str(uuid.uuid4())
    if call.protocol == "ec2":
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
                "<Code>AuthFailure</Code><Message>AWS was not able to validate the provided "
                "access credentials</Message></Error></Errors>"
                f"<RequestID>{request_id}</RequestID></Response>")
        return "401 Unauthorized", _headers("text/xml", body, request_id), body.encode()
    if call.protocol == "query":
        body = ("<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code>"
                "<Message>The security token included in the request is invalid.</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>")
        return "403 Forbidden", _headers("text/xml", body, request_id), body.encode()
    body = ('{"__type": "UnrecognizedClientException", '
            '"message": "The security token included in the request is invalid."}')
    headers = _headers("application/x-amz-json-1.0", body, request_id)
    headers.append(("x-amzn-ErrorType", "UnrecognizedClientException"))
    return "403 Forbidden", headers, body.encode()


def _headers(content_type: str, body: str, request_id: str) -> list[tuple[str, str]]:
    return [("Content-Type", content_type), ("Content-Length", str(len(body.encode()))),
            ("x-amzn-RequestId", request_id)]
