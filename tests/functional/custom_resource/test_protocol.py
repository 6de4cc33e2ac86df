"""The CloudFormation custom-resource protocol (``custom_resource/protocol.py``): every
request gets exactly one answer, under 4,096 bytes, within the Lambda's remaining time.

The ResponseURL is a small HTTP server on 127.0.0.1 (CloudFormation's pre-signed S3 URL
stand-in); deadlines are checked on the computed budget and on the sleeps the sender
asks for (a clock that moves only when it sleeps), and a lookup past its share is held
on an event, never timed with the wall clock. The protocol half of the former
tests/unit/steps/test_latest_ami_responder.py (the lookup half is test_latest.py).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amiforge.aws import cfn_response
from amiforge.aws.cfn_response import ResponseNotDelivered
from amiforge.custom_resource import protocol as custom_resource
from amiforge.custom_resource.protocol import (
    ECHOED,
    MAX_RESPONSE_BYTES,
    SAFETY_SECONDS,
    SEND_MARGIN_SECONDS,
    budget,
    fit,
)

DEAD = "http://127.0.0.1:9/x"  # the discard port: nothing listens


def request(url: str, kind: str = "Create", **overrides: Any) -> dict[str, Any]:
    event = {"RequestType": kind, "ResponseURL": url, "RequestId": "req-1",
             "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/consumer/1",
             "LogicalResourceId": "Latest", "ResourceProperties": {"Recipe": "web"}}
    if kind != "Create":
        event["PhysicalResourceId"] = "ami-0123456789abcdef0"
    return {**event, **overrides}


def found(_properties: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "ami-0123456789abcdef0", {"ImageId": "ami-0123456789abcdef0"}


# -- a lookup past its share ------------------------------------------------------------------

def test_a_lookup_past_the_deadline_answers_timed_out_once(response_url: Any) -> None:
    held, finished = threading.Event(), threading.Event()
    late: list[dict[str, Any]] = []

    def slow(properties: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        held.wait(30)
        try:
            return found(properties)
        finally:
            finished.set()

    body = custom_resource.respond(request(response_url.url), slow, seconds_left=1.0)
    late.extend(a["body"] for a in response_url.answers)
    held.set()
    assert finished.wait(10)

    assert body["Status"] == "FAILED"
    assert body["Reason"] == ("timed out after 0.2s answering 'Create': the lookup did not "
                              "finish")
    assert late == [body]
    assert [a["body"] for a in response_url.answers] == [body]  # the late result: not sent


def test_a_lookup_within_its_share_is_answered(response_url: Any) -> None:
    body = custom_resource.respond(request(response_url.url), found, seconds_left=30.0)
    assert body["Status"] == "SUCCESS" and body["PhysicalResourceId"] == "ami-0123456789abcdef0"
    assert [a["body"] for a in response_url.answers] == [body]


def test_answer_never_raises_even_for_a_broken_resolver() -> None:
    def resolve(_properties: dict) -> tuple[str, dict]:
        raise SystemError("boom")

    body = custom_resource.answer({"RequestType": "Create", "ResourceProperties": {}}, resolve)
    assert body["Reason"] == "SystemError: boom"


# -- the 4,096-byte limit -------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 100, 4000, 4096, 5000, 50_000])
def test_fit_always_fits_when_the_ids_do(size: int) -> None:
    body = {"Status": "FAILED", "PhysicalResourceId": "p", "StackId": "s" * 300,
            "RequestId": "r" * 36, "LogicalResourceId": "Latest", "Reason": "x\n" * size}
    fitted = fit(body)
    assert len(json.dumps(fitted).encode()) <= MAX_RESPONSE_BYTES
    if len(json.dumps(body).encode()) <= MAX_RESPONSE_BYTES:
        assert fitted == body


@pytest.mark.parametrize("field", ["RequestId", "StackId", "LogicalResourceId",
                                   "PhysicalResourceId"])
def test_huge_echoed_ids_are_cut_so_the_body_still_fits(response_url: Any, field: str) -> None:
    event = request(response_url.url, "Delete", **{field: "é" * 20_000})  # echoes them all
    body = custom_resource.respond(event, found)
    raw = response_url.answers[0]["raw"]
    assert len(raw) <= MAX_RESPONSE_BYTES
    assert len(json.dumps(body).encode()) <= MAX_RESPONSE_BYTES
    assert body[field].startswith("éé")


@given(st.dictionaries(st.sampled_from(ECHOED + ("Reason",)), st.text(max_size=9000)))
@settings(max_examples=60, deadline=None)
def test_fit_always_fits_whatever_is_echoed(fields: dict[str, str]) -> None:
    body = {"Status": "FAILED", "Data": {"ImageId": "ami-1"}, **fields}
    assert len(json.dumps(fit(body)).encode()) <= MAX_RESPONSE_BYTES


# -- the deadline: assert on the computed budget and sleeps, not on the wall clock ---------

@given(st.floats(min_value=0, max_value=900, allow_nan=False))
def test_budget_leaves_the_safety_margin(seconds_left: float) -> None:
    lookup, send = budget(seconds_left)
    assert lookup >= 0 and send >= 0
    assert lookup + send + SAFETY_SECONDS <= max(seconds_left, SAFETY_SECONDS) + 1e-9
    assert send <= SEND_MARGIN_SECONDS


@given(st.integers(min_value=1, max_value=20), st.floats(min_value=0.01, max_value=10),
       st.floats(min_value=-1, max_value=30))
def test_a_retry_sleep_never_reaches_past_the_time_left(attempt: int, backoff: float,
                                                         left: float) -> None:
    pause = cfn_response.retry_sleep(attempt, backoff, left)
    if left <= cfn_response.MIN_TRY_SECONDS:
        assert pause is None
    else:
        assert pause is not None and 0 < pause <= left - cfn_response.MIN_TRY_SECONDS


class FakeClock:
    """Time that moves only when the sender sleeps: the sleeps are what is checked."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_send_with_10s_left_never_sleeps_past_them(response_url: Any) -> None:
    # The case: the old backoff slept 0.5+1+2+4+... regardless, answering at 10.5 s.
    response_url.statuses.extend([503] * 20)
    clock = FakeClock()
    with pytest.raises(ResponseNotDelivered):
        cfn_response.send(response_url.url, {}, attempts=20, backoff=0.5, within=10.0,
                          clock=clock, sleep=clock.sleep)
    assert clock.sleeps[:4] == [0.5, 1.0, 2.0, 4.0]
    assert clock.now - 100.0 <= 10.0 - cfn_response.MIN_TRY_SECONDS
    assert len(response_url.answers) == len(clock.sleeps) + 1


def test_send_with_no_time_left_still_tries_once_and_never_sleeps(response_url: Any) -> None:
    clock = FakeClock()
    assert cfn_response.send(response_url.url, {"Status": "SUCCESS"}, within=0.0,
                             clock=clock, sleep=clock.sleep) == 200
    response_url.statuses.append(503)
    with pytest.raises(ResponseNotDelivered, match="after 1 attempt"):
        cfn_response.send(response_url.url, {}, within=0.1, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == []


class SleeplessClock(FakeClock):
    """The real clock plus every sleep asked for, slept in no time: the tries themselves
    take their real time, the backoff is only counted."""

    def __call__(self) -> float:
        return time.monotonic() + sum(self.sleeps)


def test_send_stops_retrying_when_its_time_is_up() -> None:
    """Was a wall-clock bound (< 2 s); now the sleeps asked for are what is checked."""
    clock = SleeplessClock()
    with pytest.raises(ResponseNotDelivered) as info:
        cfn_response.send(DEAD, {}, attempts=50, backoff=0.1, within=0.5,
                          clock=clock, sleep=clock.sleep)
    assert 0 < len(clock.sleeps) < 49  # it gave up long before its 50 attempts
    assert sum(clock.sleeps) <= 0.5 - cfn_response.MIN_TRY_SECONDS
    assert f"after {len(clock.sleeps) + 1} attempt" in str(info.value)


# -- the PUT --------------------------------------------------------------------------------

def test_send_retries_a_server_error(response_url: Any) -> None:
    response_url.statuses.extend([503])
    assert cfn_response.send(response_url.url, {"Status": "SUCCESS"}, backoff=0.01) == 200
    assert len(response_url.answers) == 2


def test_send_gives_up_at_once_on_a_refusal(response_url: Any) -> None:
    response_url.statuses.extend([403, 403])
    with pytest.raises(ResponseNotDelivered, match="after 1 attempt"):
        cfn_response.send(response_url.url, {"Status": "SUCCESS"}, backoff=0.01)


def test_send_to_nobody_fails_after_its_attempts() -> None:
    with pytest.raises(ResponseNotDelivered, match="after 2 attempt"):
        cfn_response.send(DEAD, {}, attempts=2, backoff=0.01, timeout=1)


def test_send_refuses_other_schemes() -> None:
    with pytest.raises(ResponseNotDelivered, match="not an http"):
        cfn_response.send("file:///etc/passwd", {})
