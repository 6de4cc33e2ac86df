"""``latest`` on the local cloud: what ``amiforge latest`` and ``Custom::LatestAmi`` answer
(the catalog's AVAILABLE builds, a build of the published version first), what
:func:`sync_latest` writes to ``/amiforge/<recipe>/latest``, and the responder, which
answers every request (malformed ones too) once on its ResponseURL.

The catalog is a real table; the ResponseURL is a small HTTP server on 127.0.0.1 that
records what the responder PUT there, as CloudFormation's pre-signed S3 URL would
receive it. Replaces the lookup half of tests/unit/steps/test_latest_ami_responder.py
(its FakeCatalog and FakeEnv): every test kept, errors now real (a missing table, a
corrupted record) and reads counted on the DynamoDB client instead of a fake's list.
The protocol half (fit, budget, the PUT) is tests/functional/custom_resource/test_protocol.py.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from tests.helpers import CallCounter, iso, latest_value, seed, unique

from amiforge.custom_resource.latest_ami import latest_ami_resource, respond
from amiforge.custom_resource.protocol import MAX_RESPONSE_BYTES, SAFETY_SECONDS
from amiforge.errors import InvalidInput, NotFound
from amiforge.steps.env import StepEnv
from amiforge.steps.latest import latest_image, sync_latest

HOME_AMI, EU_AMI = "ami-0123456789abcdef0", "ami-0fedcba9876543210"


@pytest.fixture
def dynamodb_calls(env: StepEnv) -> Iterator[CallCounter]:
    """The test's DynamoDB calls, by operation."""
    with CallCounter(env.client("dynamodb")) as counter:
        yield counter


@pytest.fixture
def web(env: StepEnv) -> dict[str, Any]:
    """A recipe with one AVAILABLE build, copied to eu-west-1."""
    name = unique("web")
    record = {"recipe": name, "build_id": f"{name}-5f1e2d3c4b5a69788796",
              "status": "AVAILABLE", "image_name": f"{name}-20260101-abcdef12",
              "image_id": HOME_AMI, "created_at": "2026-01-01T10:00:00.000000Z",
              "images": {"us-east-1": HOME_AMI, "eu-west-1": EU_AMI}}
    seed(env, record)
    return record


def request(url: str, kind: str = "Create", recipe: str = "web", **overrides: Any
            ) -> dict[str, Any]:
    event = {
        "RequestType": kind, "ResponseURL": url, "ServiceToken": "arn:aws:lambda:fn",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/consumer/1",
        "RequestId": "req-1", "LogicalResourceId": "Latest",
        "ResourceType": "Custom::LatestAmi", "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:fn", "Recipe": recipe},
    }
    if kind != "Create":
        event["PhysicalResourceId"] = HOME_AMI
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not ...}


def answered(server: Any) -> dict[str, Any]:
    """The one answer the server received."""
    assert len(server.answers) == 1, server.answers
    return server.answers[0]["body"]


# -- the lookup -----------------------------------------------------------------------------

def test_create_answers_the_newest_image_with_its_attributes(
        response_url: Any, env: StepEnv, web: dict[str, Any]) -> None:
    body = respond(request(response_url.url, recipe=web["recipe"]), env)
    sent = response_url.answers[0]
    assert sent["body"] == body
    assert sent["path"] == "/cfnresponse?stack=s1"
    assert sent["headers"]["Content-Type"] == ""  # the URL is signed without one
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == HOME_AMI
    assert body["Data"] == {"ImageId": HOME_AMI, "ImageName": web["image_name"],
                            "BuildId": web["build_id"],
                            "CreationDate": "2026-01-01T10:00:00.000000Z"}
    assert (body["StackId"], body["RequestId"], body["LogicalResourceId"]) == (
        "arn:aws:cloudformation:us-east-1:123456789012:stack/consumer/1", "req-1", "Latest")


def test_update_re_resolves_to_a_newer_image(response_url: Any, env: StepEnv,
                                             web: dict[str, Any]) -> None:
    seed(env, {**web, "build_id": f"{web['recipe']}-00000000000000000001",
               "created_at": iso(), "images": {"us-east-1": "ami-0aaaaaaaaaaaaaaaa"}})
    body = respond(request(response_url.url, "Update", recipe=web["recipe"],
                           OldResourceProperties={"Recipe": web["recipe"]}), env)
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == "ami-0aaaaaaaaaaaaaaaa"
    assert body["Data"]["BuildId"] == f"{web['recipe']}-00000000000000000001"


def test_a_build_of_the_published_version_wins_over_a_newer_one(env: StepEnv) -> None:
    name = unique("pub")
    env.store.publish(name, "aa" * 32, {"name": name}, None)
    seed(env, {"recipe": name, "build_id": f"{name}-1", "status": "AVAILABLE",
               "recipe_hash": "aa" * 32, "created_at": iso(2), "image_id": HOME_AMI,
               "images": {"us-east-1": HOME_AMI}},
         {"recipe": name, "build_id": f"{name}-2", "status": "AVAILABLE",
          "recipe_hash": "bb" * 32, "created_at": iso(1), "image_id": EU_AMI,
          "images": {"us-east-1": EU_AMI}})
    assert latest_image(env, name)["BuildId"] == f"{name}-1"


def test_region_picks_the_copy_in_that_region(response_url: Any, env: StepEnv,
                                              web: dict[str, Any]) -> None:
    event = request(response_url.url, ResourceProperties={"Recipe": web["recipe"],
                                                          "Region": "eu-west-1"})
    assert respond(event, env)["PhysicalResourceId"] == EU_AMI


def test_region_without_a_copy_fails_naming_recipe_and_region(
        response_url: Any, env: StepEnv, web: dict[str, Any]) -> None:
    event = request(response_url.url, ResourceProperties={"Recipe": web["recipe"],
                                                          "Region": "ap-south-1"})
    body = respond(event, env)
    assert body["Status"] == "FAILED"
    assert f"'{web['recipe']}'" in body["Reason"] and "ap-south-1" in body["Reason"]
    assert "eu-west-1, us-east-1" in body["Reason"]


def test_unknown_recipe_fails_with_a_reason_naming_it(response_url: Any,
                                                      env: StepEnv) -> None:
    body = respond(request(response_url.url, recipe="ghost"), env)
    assert answered(response_url) == body
    assert body["Status"] == "FAILED"
    assert body["Reason"].startswith("recipe 'ghost' has no AVAILABLE image")
    # A failed Create still carries a physical id (CloudFormation requires one).
    assert body["PhysicalResourceId"] == "Latest-unresolved"


def test_extra_properties_are_ignored(response_url: Any, env: StepEnv,
                                      web: dict[str, Any]) -> None:
    event = request(response_url.url, ResourceProperties={"Recipe": web["recipe"],
                                                          "RefreshToken": "2026-01-02"})
    assert respond(event, env)["Status"] == "SUCCESS"


def test_the_lookup_refuses_bad_properties_naming_them(env: StepEnv) -> None:
    with pytest.raises(InvalidInput, match="Custom::LatestAmi property Region: 'Mars'"):
        latest_ami_resource({"Recipe": "web", "Region": "Mars"}, env)
    with pytest.raises(NotFound, match="recipe 'nobody-built' has no AVAILABLE image"):
        latest_image(env, "nobody-built")


# -- sync_latest: the parameter follows the catalog ------------------------------------------

def test_sync_latest_writes_every_region_once_and_reports_what_it_moved(
        env: StepEnv, web: dict[str, Any]) -> None:
    moved = sync_latest(env, web["recipe"])
    assert [(m.region, m.previous, m.image_id) for m in moved] == [
        ("eu-west-1", None, EU_AMI), ("us-east-1", None, HOME_AMI)]
    assert latest_value(env, web["recipe"]) == HOME_AMI
    assert latest_value(env, web["recipe"], "eu-west-1") == EU_AMI
    assert sync_latest(env, web["recipe"]) == []  # already right: nothing written
    assert sync_latest(env, "nobody-built") == []


# -- delete ---------------------------------------------------------------------------------

@pytest.mark.parametrize("properties", [{"Recipe": "web"}, {"Recipe": "ghost"}, None, [1], ...])
def test_delete_succeeds_and_touches_nothing(response_url: Any, env: StepEnv,
                                             dynamodb_calls: CallCounter,
                                             properties: Any) -> None:
    body = respond(request(response_url.url, "Delete", ResourceProperties=properties,
                           PhysicalResourceId="Latest-unresolved"), env)
    assert answered(response_url) == body
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == "Latest-unresolved"  # echoed, as on Create failure
    assert dynamodb_calls.calls == {}


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
def test_malformed_request_answers_failed_with_why(response_url: Any, env: StepEnv,
                                                   dynamodb_calls: CallCounter,
                                                   overrides: dict, expected: str) -> None:
    body = respond(request(response_url.url, **overrides), env)
    assert answered(response_url) == body
    assert body["Status"] == "FAILED"
    assert expected in body["Reason"]
    assert body["RequestId"] == "req-1" and body["LogicalResourceId"] == "Latest"
    assert dynamodb_calls.calls == {}  # refused before any lookup


def test_missing_ids_are_answered_as_empty_strings(response_url: Any, env: StepEnv,
                                                   web: dict[str, Any]) -> None:
    body = respond({"RequestType": "Create", "ResponseURL": response_url.url,
                    "ResourceProperties": {"Recipe": web["recipe"]}}, env)
    assert answered(response_url)["StackId"] == ""
    assert body["Status"] == "SUCCESS"


@pytest.mark.parametrize("event", [None, "Create", ["Create"], 42,
                                   {"RequestType": "Create", "ResponseURL": "file:///etc/x"},
                                   {"RequestType": "Create", "ResponseURL": 7}])
def test_nothing_to_answer_to_returns_the_body_without_raising(env: StepEnv,
                                                               event: Any) -> None:
    body = respond(event, env)
    assert body["Status"] == "FAILED"


# -- errors inside the lookup ---------------------------------------------------------------

def test_aws_error_fails_with_its_code(response_url: Any, env: StepEnv) -> None:
    gone = dataclasses.replace(env, catalog_table=unique("no-such-table"),
                               recipes_table=unique("no-such-table"))
    body = respond(request(response_url.url), gone)
    assert answered(response_url) == body
    assert body["Reason"].startswith("GetItem failed: ResourceNotFoundException: ")


def test_a_crash_on_a_corrupted_record_still_answers_with_the_error(
        response_url: Any, env: StepEnv) -> None:
    name = unique("corrupt")
    seed(env, {"recipe": name, "build_id": f"{name}-1", "status": "AVAILABLE",
               "image_id": HOME_AMI, "images": "ami-0123456789abcdef0"})  # not a map
    body = respond(request(response_url.url, recipe=name), env)
    assert answered(response_url)["Status"] == "FAILED"
    assert body["Reason"] == "AttributeError: 'str' object has no attribute 'get'"


def test_a_long_reason_is_cut_to_fit_keeping_its_head(response_url: Any,
                                                     env: StepEnv) -> None:
    name = unique("everywhere")
    many = {f"xx-region-{n}": HOME_AMI for n in range(900)}  # the reason lists them all
    seed(env, {"recipe": name, "build_id": f"{name}-1", "status": "AVAILABLE",
               "image_id": HOME_AMI, "images": many})
    body = respond(request(response_url.url, ResourceProperties={
        "Recipe": name, "Region": "ap-south-1"}), env)
    raw = response_url.answers[0]["raw"]
    assert len(raw) <= MAX_RESPONSE_BYTES
    assert body["Reason"].startswith(f"recipe '{name}' has no image in region ap-south-1")
    assert body["Reason"].endswith(" [truncated]")


# -- the Lambda entry point -----------------------------------------------------------------

class Context:
    def __init__(self, millis: int) -> None:
        self.millis = millis

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


def test_handler_with_little_time_answers_and_plans_within_it(
        response_url: Any, env: StepEnv, web: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from amiforge.aws import cfn_response
    from amiforge.handlers import latest_ami

    planned: list[float] = []
    real_send = cfn_response.send

    def recording_send(url: str, body: dict, **kwargs: Any) -> int:
        planned.append(kwargs["within"])
        return real_send(url, body, **kwargs)

    monkeypatch.setattr(latest_ami, "step_env", lambda: env)
    monkeypatch.setattr(cfn_response, "send", recording_send)
    body = latest_ami.handler(request(response_url.url, recipe=web["recipe"]), Context(5000))
    assert body["Status"] == "SUCCESS" and answered(response_url) == body
    assert len(planned) == 1 and 0 < planned[0] <= 5.0 - SAFETY_SECONDS


def test_handler_past_its_time_answers_timed_out_once_and_never_again(
        response_url: Any, env: StepEnv, web: dict[str, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The lookup is held at its first DynamoDB call until the answer went out; then it
    is let go, and once it has finished the server still holds one answer."""
    from amiforge.handlers import latest_ami

    held, finished = threading.Event(), threading.Event()
    events = env.client("dynamodb").meta.events

    def hold(**_: Any) -> None:  # a before-call handler's return value would be the answer
        held.wait(30)

    events.register("before-call.dynamodb.*", hold, unique_id="hold")
    events.register("after-call.dynamodb.Query", lambda **_: finished.set(), unique_id="done")
    monkeypatch.setattr(latest_ami, "step_env", lambda: env)
    try:
        body = latest_ami.handler(request(response_url.url, recipe=web["recipe"]),
                                  Context(1000))
        held.set()
        assert finished.wait(10), "the held lookup never finished"
    finally:
        held.set()
        events.unregister("before-call.dynamodb.*", unique_id="hold")
        events.unregister("after-call.dynamodb.Query", unique_id="done")

    assert body["Status"] == "FAILED"
    assert "timed out" in body["Reason"] and "'Create'" in body["Reason"]
    assert answered(response_url) == body
    body = latest_ami.handler(request(response_url.url, "Delete"), None)
    assert body["Status"] == "SUCCESS"
    assert [a["body"]["Status"] for a in response_url.answers] == ["FAILED", "SUCCESS"]
