"""Fuzzing the Custom::LatestAmi responder: every request with a ResponseURL is answered.

A custom resource that never answers leaves the consumer's stack in CREATE_IN_PROGRESS
for an hour. hypothesis builds arbitrary CloudFormation-ish events (request types, ids and
properties of any JSON type and size); each goes through the Lambda's public entry
(``amiforge.handlers.latest_ami.handler``) with a catalog on the local cloud holding one
AVAILABLE image, and a tiny HTTP server on 127.0.0.1 stands in for the pre-signed S3 URL.
Each event must get exactly one PUT, with a well-formed body under 4,096 bytes.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amiforge.localcloud.testing import LambdaContext

TABLE = "amiforge-fuzz-catalog"
RECIPES = "amiforge-fuzz-recipes"


class _Receiver(BaseHTTPRequestHandler):
    answers: dict[str, list[bytes]] = {}
    lock = threading.Lock()

    def do_PUT(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.lock:
            self.answers.setdefault(self.path, []).append(body)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def handler(local_cloud: Any) -> Iterator[Any]:
    """The responder's entry point, its StepEnv pointing at a catalog with one image."""
    import boto3

    from amiforge.handlers import latest_ami, runtime

    db = boto3.client("dynamodb", region_name=local_cloud.region,
                      endpoint_url=local_cloud.endpoint)
    db.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in
                              ("recipe", "build_id", "available_recipe", "created_at")],
        KeySchema=[{"AttributeName": "recipe", "KeyType": "HASH"},
                   {"AttributeName": "build_id", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{
            "IndexName": "available", "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": "available_recipe", "KeyType": "HASH"},
                          {"AttributeName": "created_at", "KeyType": "RANGE"}]}])
    db.put_item(TableName=TABLE, Item={
        "recipe": {"S": "web"}, "build_id": {"S": "web-1"}, "status": {"S": "AVAILABLE"},
        "available_recipe": {"S": "web"}, "created_at": {"S": "2026-01-01T00:00:00Z"},
        "image_id": {"S": "ami-0123456789abcdef0"}, "image_name": {"S": "web-1"},
        "images": {"M": {local_cloud.region: {"S": "ami-0123456789abcdef0"}}}})
    # Which version is published decides what latest names: an empty store, so the newest.
    db.create_table(
        TableName=RECIPES, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                              for n in ("name", "version")],
        KeySchema=[{"AttributeName": "name", "KeyType": "HASH"},
                   {"AttributeName": "version", "KeyType": "RANGE"}])
    mp = pytest.MonkeyPatch()
    mp.setenv("AMIFORGE_CATALOG_TABLE", TABLE)
    mp.setenv("AMIFORGE_RECIPES_TABLE", RECIPES)
    mp.setattr(runtime, "_env", None)  # the responder builds its StepEnv from these
    try:
        yield latest_ami.handler
    finally:
        mp.undo()
        db.delete_table(TableName=TABLE)
        db.delete_table(TableName=RECIPES)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8)
properties = st.fixed_dictionaries({}, optional={
    "ServiceToken": st.text(max_size=20),
    "Recipe": st.sampled_from(["web", "unknown", "BAD NAME", "", "a" * 41]) | json_values
              | st.text(min_size=1000, max_size=6000),
    "Region": st.sampled_from(["us-east-1", "eu-west-1", "", "mars-north-9"]) | json_values,
    "Extra": json_values,
})
events = st.fixed_dictionaries({}, optional={
    "RequestType": st.sampled_from(["Create", "Update", "Delete"]) | json_values,
    "ResourceProperties": properties | json_values,
    "OldResourceProperties": properties | json_values,
    "StackId": st.just("arn:aws:cloudformation:us-east-1:123456789012:stack/c/1") | json_values,
    "RequestId": st.uuids().map(str) | json_values,
    "LogicalResourceId": st.just("Ami") | json_values,
    "PhysicalResourceId": st.just("ami-0123456789abcdef0") | json_values,
    "ResourceType": st.just("Custom::LatestAmi") | json_values,
    "ServiceToken": st.text(max_size=20),
})


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(event=events)
def test_every_event_with_a_response_url_is_answered_once(event: dict[str, Any], handler: Any,
                                                          receiver: str) -> None:
    path = f"/answer/{uuid.uuid4().hex}"
    event = {**event, "ResponseURL": receiver + path}
    returned = handler(event, LambdaContext("amiforge-latest-ami", 12.0))
    answers = _Receiver.answers.pop(path, [])
    assert len(answers) == 1, f"{len(answers)} answers for {event!r}"
    assert len(answers[0]) <= 4096
    body = json.loads(answers[0])
    assert body["Status"] in ("SUCCESS", "FAILED")
    assert body == returned
    assert isinstance(body["PhysicalResourceId"], str) and body["PhysicalResourceId"]
    for key in ("StackId", "RequestId", "LogicalResourceId"):
        assert isinstance(body[key], str)
    if body["Status"] == "FAILED":
        assert body["Reason"], f"FAILED without a reason for {event!r}"
    if event.get("RequestType") == "Delete":
        assert body["Status"] == "SUCCESS"  # Delete touches nothing and always succeeds
    if body["Status"] == "SUCCESS" and event.get("RequestType") in ("Create", "Update"):
        assert body["Data"]["ImageId"] == "ami-0123456789abcdef0"
