"""The Lambda wrapper: transport failures become TransientAwsError, which the state
machine retries; domain errors and bugs keep their own type."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.parsers import ResponseParserError

from amiforge.errors import AwsCallFailed, TransientAwsError
from amiforge.handlers import runtime
from amiforge.localcloud.testing import LambdaContext


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "step_env", lambda: None)


def failing(error: Exception) -> Any:
    def step(event: dict, env: Any) -> dict:
        raise error
    return runtime.lambda_handler(step)


@pytest.mark.parametrize("error", [
    ResponseParserError("Unable to parse response: 500 Internal Server Error"),
    EndpointConnectionError(endpoint_url="https://ec2.us-east-1.amazonaws.com"),
    ReadTimeoutError(endpoint_url="https://ec2.us-east-1.amazonaws.com"),
])
def test_transport_failures_are_retried_by_the_state_machine(error: Exception) -> None:
    with pytest.raises(TransientAwsError) as caught:
        failing(error)({"build": {"recipe": "web"}}, LambdaContext())
    assert type(error).__name__ in str(caught.value)
    assert caught.value.__cause__ is error


def test_domain_errors_and_bugs_keep_their_type() -> None:
    with pytest.raises(AwsCallFailed):
        failing(AwsCallFailed("RunInstances", "InvalidAMIID.Malformed", "bad id"))({}, LambdaContext())
    with pytest.raises(KeyError):
        failing(KeyError("build"))({}, LambdaContext())
