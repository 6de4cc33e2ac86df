"""What a failed build records as its reason. Pure.

Step Functions hands the failure path ``{Error, Cause}``, where ``Cause`` is the failed
Lambda's own JSON (``errorType``, ``errorMessage``) or a plain text; the reason stored on
the record, shown by ``history`` and notified is one readable line made from it.
"""

from __future__ import annotations

import json
from typing import Any


def rejected_reason(reason: str, by: str | None) -> str:
    """The reason of a build `amiforge reject` refused, from what reject recorded."""
    return f"rejected: {reason} (by {by})" if by else f"rejected: {reason}"


def failure_reason(error: dict[str, Any] | None) -> str:
    """A readable reason from Step Functions' {Error, Cause} (Cause is Lambda's JSON)."""
    if not error:
        return "unknown failure"
    name, cause = error.get("Error", "Error"), error.get("Cause") or ""
    try:
        parsed = json.loads(cause)
        message = parsed.get("errorMessage") or parsed.get("Cause") or cause
        name = parsed.get("errorType") or name
    except (ValueError, AttributeError):
        message = cause
    # The approval gate (steps/approval.py): `amiforge reject`'s reason, or its timeout.
    if name == "ApprovalRejected":
        return f"rejected: {cause or 'no reason given'}"
    if name == "ApprovalTimedOut":
        return f"approval timed out: {cause}" if cause else "approval timed out"
    if name == "States.Timeout":
        return "timed out: the builder did not stop within build.timeout_minutes"
    return f"{name}: {message}" if message else str(name)
