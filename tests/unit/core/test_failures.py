"""A failed build's reason, from the error Step Functions caught (``core/failures.py``)."""

from __future__ import annotations

from amiforge.core.failures import failure_reason


def test_reason_from_a_lambda_error_names_type_and_message() -> None:
    cause = '{"errorType": "BuildFailed", "errorMessage": "build script failed (exit 3)"}'
    assert failure_reason({"Error": "BuildFailed", "Cause": cause}) == \
        "BuildFailed: build script failed (exit 3)"


def test_timeout_reason_points_at_the_recipe_field() -> None:
    assert failure_reason({"Error": "States.Timeout", "Cause": ""}) == \
        "timed out: the builder did not stop within build.timeout_minutes"


def test_unparseable_cause_is_kept_verbatim() -> None:
    assert failure_reason({"Error": "X", "Cause": "plain text"}) == "X: plain text"
    assert failure_reason(None) == "unknown failure"
