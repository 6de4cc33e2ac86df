"""The cleanup queue's consumer: poison messages fail alone, the others are served."""

from __future__ import annotations

import json
from typing import Any

import pytest

from amiforge.errors import AwsCallFailed
from amiforge.steps import finish


@pytest.fixture
def cleaned(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    calls: list[tuple[str, Any]] = []

    def cleanup_build(env: Any, build_id: str, *, keep_image: Any, regions: Any = ()) -> dict:
        if build_id == "explodes":
            raise RuntimeError("TerminateInstances: AccessDenied")
        calls.append((build_id, keep_image))
        if build_id == "stack-stuck":
            return {"stack_deleted": "error: DeleteStack: Throttling"}
        return {"stack_deleted": False}

    monkeypatch.setattr(finish, "cleanup_build", cleanup_build)
    return calls


def record(message_id: str, body: str) -> dict[str, Any]:
    return {"messageId": message_id, "body": body,
            "attributes": {"ApproximateReceiveCount": "1"}}


def test_each_bad_message_is_reported_and_the_good_ones_are_served(
        cleaned: list[tuple[str, Any]]) -> None:
    event = {"Records": [
        record("good-1", json.dumps({"build_id": "web-1", "keep_image": "ami-1"})),
        record("not-json", "poison"),
        record("no-build", json.dumps({"recipe": "web"})),
        record("empty-build", json.dumps({"build_id": ""})),
        record("not-an-object", json.dumps(["web-2"])),
        record("fails", json.dumps({"build_id": "explodes"})),
        record("stack-left", json.dumps({"build_id": "stack-stuck"})),
        record("good-2", json.dumps({"build_id": "web-3", "keep_image": None})),
    ]}
    result = finish.cleanup_messages(event, env=None)  # type: ignore[arg-type]
    assert result == {"batchItemFailures": [
        {"itemIdentifier": i} for i in ("not-json", "no-build", "empty-build", "not-an-object",
                                         "fails", "stack-left")]}
    assert cleaned == [("web-1", "ami-1"), ("stack-stuck", None), ("web-3", None)]


def test_an_empty_batch_has_no_failures(cleaned: list[tuple[str, Any]]) -> None:
    assert finish.cleanup_messages({"Records": []}, env=None) == {  # type: ignore[arg-type]
        "batchItemFailures": []}


def test_a_stack_that_cannot_be_deleted_does_not_stop_the_ec2_cleanup(
        monkeypatch: pytest.MonkeyPatch) -> None:
    done: list[str] = []

    class Env:
        region = "us-east-1"
        catalog_table = ""

        def client(self, service: str, region: str | None = None) -> str:
            return f"{service}@{region or self.region}"

    def stack_fails(env: Any, build_id: str) -> bool:
        raise AwsCallFailed("DeleteStack", "Throttling", "Rate exceeded")

    monkeypatch.setattr(finish, "delete_build_stack", stack_fails)
    monkeypatch.setattr(finish.ec2_api, "instances_tagged",
                        lambda ec2, tags: [{"InstanceId": "i-1"}])
    monkeypatch.setattr(finish.ec2_api, "terminate",
                        lambda ec2, ids: done.extend(ids) or list(ids))
    monkeypatch.setattr(finish.ec2_api, "images_tagged",
                        lambda ec2, key, value: [{"ImageId": "ami-bad", "Tags": []}])
    monkeypatch.setattr(finish.ec2_api, "deregister_with_snapshots",
                        lambda ec2, image_id: done.append(image_id) or ["snap-1"])
    result = finish.cleanup_build(Env(), "web-1", keep_image=None)  # type: ignore[arg-type]
    assert done == ["i-1", "ami-bad"]
    assert result["terminated"] == ["i-1"]
    assert result["deregistered"] == {"ami-bad": ["snap-1"]}
    assert result["stack_deleted"].startswith("error: ")
    assert "Throttling" in result["stack_deleted"]
