"""Custom::LatestAmi's responder: every request, malformed ones too, is answered once.

The catalog is a stub; the ResponseURL is a small HTTP server on 127.0.0.1 that records
what the responder PUT there, as CloudFormation's pre-signed S3 URL would receive it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amiforge.aws import cfn_response
from amiforge.aws.cfn_response import ResponseNotDelivered
from amiforge.custom_resource import protocol as custom_resource
from amiforge.custom_resource.latest_ami import respond
from amiforge.custom_resource.protocol import (
    ECHOED,
    MAX_RESPONSE_BYTES,
    SAFETY_SECONDS,
    SEND_MARGIN_SECONDS,
    budget,
    fit,
)
from amiforge.errors import AwsCallFailed

WEB = {"build_id": "web-5f1e2d3c4b5a69788796", "image_name": "web-20260101-abcdef12",
       "created_at": "2026-01-01T10:00:00.000000Z",
       "images": {"us-east-1": "ami-0123456789abcdef0", "eu-west-1": "ami-0fedcba9876543210"}}


# -- fakes ----------------------------------------------------------------------------------

@dataclass
class FakeCatalog:
    records: dict[str, Any] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    delay: float = 0.0

    def latest(self, recipe: str, published_hash: str | None = None) -> dict | None:
        self.calls.append(recipe)
        if self.delay:
            time.sleep(self.delay)
        record = self.records.get(recipe)
        if isinstance(record, Exception):
            raise record
        return record


class NoPublishedVersion:
    def current(self, name: str) -> None:
        return None


@dataclass
class FakeEnv:
    catalog: FakeCatalog
    region: str = "us-east-1"
    store: NoPublishedVersion = field(default_factory=NoPublishedVersion)


class Collector(BaseHTTPRequestHandler):
    """Records each PUT; answers with the next queued status (200 when none)."""

    server: Any

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.answers.append({"path": self.path, "headers": dict(self.headers),
                                    "raw": body, "body": json.loads(body)})
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def response_url() -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    server.answers = []  # type: ignore[attr-defined]
    server.statuses = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/cfnresponse?stack=s1"  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def env() -> FakeEnv:
    return FakeEnv(FakeCatalog({"web": WEB}))


def request(url: str, kind: str = "Create", **overrides: Any) -> dict[str, Any]:
    event = {
        "RequestType": kind, "ResponseURL": url, "ServiceToken": "arn:aws:lambda:fn",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/consumer/1",
        "RequestId": "req-1", "LogicalResourceId": "Latest",
        "ResourceType": "Custom::LatestAmi", "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:fn", "Recipe": "web"},
    }
    if kind != "Create":
        event["PhysicalResourceId"] = "ami-0123456789abcdef0"
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not ...}


def answered(server: Any) -> dict[str, Any]:
    """The one answer the server received."""
    assert len(server.answers) == 1, server.answers
    return server.answers[0]["body"]


# -- the lookup -----------------------------------------------------------------------------

def test_create_answers_the_newest_image_with_its_attributes(response_url: Any,
                                                             env: FakeEnv) -> None:
    body = respond(request(response_url.url), env)
    sent = response_url.answers[0]
    assert sent["body"] == body
    assert sent["path"] == "/cfnresponse?stack=s1"
    assert sent["headers"]["Content-Type"] == ""  # the URL is signed without one
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == "ami-0123456789abcdef0"
    assert body["Data"] == {"ImageId": "ami-0123456789abcdef0",
                            "ImageName": "web-20260101-abcdef12",
                            "BuildId": "web-5f1e2d3c4b5a69788796",
                            "CreationDate": "2026-01-01T10:00:00.000000Z"}
    assert (body["StackId"], body["RequestId"], body["LogicalResourceId"]) == (
        "arn:aws:cloudformation:us-east-1:123456789012:stack/consumer/1", "req-1", "Latest")
    assert env.catalog.calls == ["web"]


def test_update_re_resolves_to_a_newer_image(response_url: Any, env: FakeEnv) -> None:
    env.catalog.records["web"] = {**WEB, "build_id": "web-new",
                                  "images": {"us-east-1": "ami-0aaaaaaaaaaaaaaaa"}}
    body = respond(request(response_url.url, "Update",
                           OldResourceProperties={"Recipe": "web"}), env)
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == "ami-0aaaaaaaaaaaaaaaa"
    assert body["Data"]["BuildId"] == "web-new"


def test_region_picks_the_copy_in_that_region(response_url: Any, env: FakeEnv) -> None:
    event = request(response_url.url, ResourceProperties={"Recipe": "web",
                                                          "Region": "eu-west-1"})
    assert respond(event, env)["PhysicalResourceId"] == "ami-0fedcba9876543210"


def test_region_without_a_copy_fails_naming_recipe_and_region(response_url: Any,
                                                              env: FakeEnv) -> None:
    event = request(response_url.url, ResourceProperties={"Recipe": "web",
                                                          "Region": "ap-south-1"})
    body = respond(event, env)
    assert body["Status"] == "FAILED"
    assert "'web'" in body["Reason"] and "ap-south-1" in body["Reason"]
    assert "eu-west-1, us-east-1" in body["Reason"]


def test_unknown_recipe_fails_with_a_reason_naming_it(response_url: Any, env: FakeEnv) -> None:
    body = respond(request(response_url.url, ResourceProperties={"Recipe": "ghost"}), env)
    assert answered(response_url) == body
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("recipe 'ghost' has no AVAILABLE image")
    # A failed Create still carries a physical id (CloudFormation requires one).
    assert body["PhysicalResourceId"] == "Latest-unresolved"


def test_extra_properties_are_ignored(response_url: Any, env: FakeEnv) -> None:
    event = request(response_url.url, ResourceProperties={"Recipe": "web",
                                                          "RefreshToken": "2026-01-02"})
    assert respond(event, env)["Status"] == "SUCCESS"


# -- delete ---------------------------------------------------------------------------------

@pytest.mark.parametrize("properties", [{"Recipe": "web"}, {"Recipe": "ghost"}, None, [1], ...])
def test_delete_succeeds_and_touches_nothing(response_url: Any, env: FakeEnv,
                                             properties: Any) -> None:
    body = respond(request(response_url.url, "Delete", ResourceProperties=properties,
                           PhysicalResourceId="Latest-unresolved"), env)
    assert answered(response_url) == body
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == "Latest-unresolved"  # echoed, as on Create failure
    assert env.catalog.calls == []


# -- malformed requests still answer --------------------------------------------------------

@pytest.mark.parametrize(("overrides", "expected"), [
    ({"ResourceProperties": ...}, "ResourceProperties must be a map"),
    ({"ResourceProperties": None}, "ResourceProperties must be a map"),
    ({"ResourceProperties": "Recipe=web"}, "got 'Recipe=web'"),
    ({"ResourceProperties": ["web"]}, "ResourceProperties must be a map"),
    ({"ResourceProperties": {}}, "needs the property Recipe"),
    ({"ResourceProperties": {"Recipe": ""}}, "needs the property Recipe"),
    ({"ResourceProperties": {"Recipe": 42}}, "got 42"),
    ({"ResourceProperties": {"Recipe": ["web"]}}, "got ['web']"),
    ({"ResourceProperties": {"Recipe": {"Ref": "Recipe"}}}, "got {'Ref': 'Recipe'}"),
    ({"ResourceProperties": {"Recipe": "Web_Tier"}}, "'Web_Tier' is not a valid recipe name"),
    ({"ResourceProperties": {"Recipe": "web", "Region": 7}}, "Region: 7 is not an AWS region"),
    ({"ResourceProperties": {"Recipe": "web", "Region": "Mars"}}, "'Mars' is not an AWS region"),
    ({"RequestType": "Upsert"}, "unknown RequestType 'Upsert'"),
    ({"RequestType": ...}, "unknown RequestType None"),
    ({"RequestType": ["Create"]}, "unknown RequestType ['Create']"),
])
def test_malformed_request_answers_failed_with_why(response_url: Any, env: FakeEnv,
                                                   overrides: dict, expected: str) -> None:
    body = respond(request(response_url.url, **overrides), env)
    assert answered(response_url) == body
    assert body["Status"] == "FAILED"
    assert expected in body["Reason"]
    assert body["RequestId"] == "req-1" and body["LogicalResourceId"] == "Latest"
    assert env.catalog.calls == []


def test_missing_ids_are_answered_as_empty_strings(response_url: Any, env: FakeEnv) -> None:
    body = respond({"RequestType": "Create", "ResponseURL": response_url.url,
                    "ResourceProperties": {"Recipe": "web"}}, env)
    assert answered(response_url)["StackId"] == ""
    assert body["Status"] == "SUCCESS"


@pytest.mark.parametrize("event", [None, "Create", ["Create"], 42,
                                   {"RequestType": "Create", "ResponseURL": "file:///etc/x"},
                                   {"RequestType": "Create", "ResponseURL": 7}])
def test_nothing_to_answer_to_returns_the_body_without_raising(env: FakeEnv, event: Any) -> None:
    body = respond(event, env)
    assert body["Status"] == "FAILED"


# -- errors inside the lookup ---------------------------------------------------------------

def test_aws_error_fails_with_its_message(response_url: Any, env: FakeEnv) -> None:
    env.catalog.records["web"] = AwsCallFailed("Query", "AccessDeniedException", "not allowed")
    body = respond(request(response_url.url), env)
    assert body["Reason"] == "Query failed: AccessDeniedException: not allowed"


def test_a_crash_still_answers_with_the_error(response_url: Any, env: FakeEnv) -> None:
    env.catalog.records["web"] = {"images": {"us-east-1": "ami-1"}}  # no build_id: KeyError
    body = respond(request(response_url.url), env)
    assert answered(response_url)["Status"] == "FAILED"
    assert body["Reason"] == "KeyError: 'build_id'"


def test_a_lookup_past_the_deadline_answers_timed_out_once(response_url: Any,
                                                           env: FakeEnv) -> None:
    env.catalog.delay = 1.5
    body = respond(request(response_url.url), env, seconds_left=1.0)
    assert body["Status"] == "FAILED"
    assert "timed out" in body["Reason"] and "'Create'" in body["Reason"]
    time.sleep(1.5)  # the lookup ends in its thread; it must not answer a second time
    assert answered(response_url) == body


# -- the 4,096-byte limit -------------------------------------------------------------------

def test_a_long_reason_is_cut_to_fit_keeping_its_head(response_url: Any, env: FakeEnv) -> None:
    env.catalog.records["web"] = AwsCallFailed("Query", "ValidationException", "é" * 9000)
    body = respond(request(response_url.url), env)
    raw = response_url.answers[0]["raw"]
    assert len(raw) <= MAX_RESPONSE_BYTES
    assert body["Reason"].startswith("Query failed: ValidationException: éé")
    assert body["Reason"].endswith(" [truncated]")


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
def test_huge_echoed_ids_are_cut_so_the_body_still_fits(response_url: Any, env: FakeEnv,
                                                         field: str) -> None:
    event = request(response_url.url, "Delete", **{field: "é" * 20_000})  # echoes them all
    body = respond(event, env)
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


def test_handler_with_little_time_answers_and_plans_within_it(
        response_url: Any, env: FakeEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    from amiforge.handlers import latest_ami

    planned: list[float] = []
    real_send = cfn_response.send

    def recording_send(url: str, body: dict, **kwargs: Any) -> int:
        planned.append(kwargs["within"])
        return real_send(url, body, **kwargs)

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 800

    monkeypatch.setattr(latest_ami, "step_env", lambda: env)
    monkeypatch.setattr(cfn_response, "send", recording_send)
    body = latest_ami.handler(request(response_url.url), Context())
    assert body["Status"] == "SUCCESS" and answered(response_url) == body
    assert len(planned) == 1 and 0 < planned[0] <= 0.8 - SAFETY_SECONDS


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
        cfn_response.send("http://127.0.0.1:9/x", {}, attempts=2, backoff=0.01, timeout=1)


def test_send_stops_retrying_when_its_time_is_up() -> None:
    started = time.monotonic()
    with pytest.raises(ResponseNotDelivered):
        cfn_response.send("http://127.0.0.1:9/x", {}, attempts=50, backoff=0.1, within=0.5)
    assert time.monotonic() - started < 2.0


def test_send_refuses_other_schemes() -> None:
    with pytest.raises(ResponseNotDelivered, match="not an http"):
        cfn_response.send("file:///etc/passwd", {})


# -- the Lambda entry point -----------------------------------------------------------------

def test_handler_answers_within_the_lambda_s_remaining_time(
        response_url: Any, env: FakeEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    from amiforge.handlers import latest_ami

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 1000

    monkeypatch.setattr(latest_ami, "step_env", lambda: env)
    env.catalog.delay = 1.0
    body = latest_ami.handler(request(response_url.url), Context())
    assert "timed out" in body["Reason"]
    env.catalog.delay = 0
    body = latest_ami.handler(request(response_url.url, "Delete"), None)
    assert body["Status"] == "SUCCESS"
    assert [a["body"]["Status"] for a in response_url.answers] == ["FAILED", "SUCCESS"]


def test_answer_never_raises_even_for_a_broken_resolver() -> None:
    def resolve(_properties: dict) -> tuple[str, dict]:
        raise SystemError("boom")

    body = custom_resource.answer({"RequestType": "Create", "ResourceProperties": {}}, resolve)
    assert body["Reason"] == "SystemError: boom"
