"""Step Functions' Retry waits follow the local cloud's ``retry_scale``
(localcloud/fills/sfn_retry.py): every attempt is still made, with the interval the
Retrier computed, only multiplied by the scale; 1 (the default) is AWS's real time."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from amiforge.localcloud.fills import sfn_retry
from amiforge.localcloud.testing import wait_for

ROLE = "arn:aws:iam::123456789012:role/sfn"
INTERVAL, ATTEMPTS = 30, 3  # 90 s of retries at real time

DEFINITION = json.dumps({
    "StartAt": "Try",
    "States": {
        "Try": {"Type": "Parallel", "End": True,
                "Branches": [{"StartAt": "Boom", "States": {
                    "Boom": {"Type": "Fail", "Error": "Nope", "Cause": "always"}}}],
                "Retry": [{"ErrorEquals": ["Nope"], "IntervalSeconds": INTERVAL,
                           "MaxAttempts": ATTEMPTS, "BackoffRate": 1.0}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
        "Caught": {"Type": "Pass", "End": True},
    }})


@pytest.fixture
def sleeps(local_cloud: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The Retry waits asked for, in seconds; the scale put back afterwards."""
    asked: list[float] = []
    real = sfn_retry._sleep

    def sleep(seconds: float) -> None:
        asked.append(seconds)
        real(seconds)

    monkeypatch.setattr(sfn_retry, "_sleep", sleep)
    before = local_cloud.retry_scale
    try:
        yield asked
    finally:
        local_cloud.retry_scale = before


def test_retry_waits_are_scaled_and_every_attempt_is_still_made(
        local_cloud: Any, sleeps: list[float]) -> None:
    assert local_cloud.retry_scale == 1.0  # as on AWS unless a test says otherwise
    local_cloud.retry_scale = 0.001
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(name=f"retry-{uuid.uuid4().hex[:8]}",
                                   definition=DEFINITION, roleArn=ROLE)["stateMachineArn"]
    run = sfn.start_execution(stateMachineArn=arn)["executionArn"]

    # 90 s of real retries; scaled they take a tenth of a second.
    wait_for(lambda: sfn.describe_execution(executionArn=run)["status"] != "RUNNING",
             timeout=30, what="the retried execution to end")

    assert sfn.describe_execution(executionArn=run)["status"] == "SUCCEEDED"  # Caught
    events = sfn.get_execution_history(executionArn=run, maxResults=1000)["events"]
    attempts = [e for e in events if e["type"] == "ParallelStateStarted"]
    assert len(attempts) == 1 + ATTEMPTS
    assert sleeps == pytest.approx([INTERVAL * 0.001] * ATTEMPTS)


def test_a_scale_that_is_not_positive_is_refused_naming_it(local_cloud: Any,
                                                           sleeps: list[float]) -> None:
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="retry_scale must be positive"):
            local_cloud.retry_scale = bad
    assert local_cloud.retry_scale == 1.0
