"""The cleanup queue's consumer: poison messages fail alone, the others are served."""

from __future__ import annotations

import json
from typing import Any

import pytest

from amiforge.steps import finish


@pytest.fixture
def cleaned(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    calls: list[tuple[str, Any]] = []

    def cleanup_build(env: Any, build_id: str, *, keep_image: Any, regions: Any = ()) -> dict:
        if build_id == "explodes":
            raise RuntimeError("TerminateInstances: AccessDenied")
        calls.append((build_id, keep_image))
        return {}

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
        record("good-2", json.dumps({"build_id": "web-3", "keep_image": None})),
    ]}
    result = finish.cleanup_messages(event, env=None)  # type: ignore[arg-type]
    assert result == {"batchItemFailures": [
        {"itemIdentifier": i} for i in ("not-json", "no-build", "empty-build", "not-an-object",
                                         "fails")]}
    assert cleaned == [("web-1", "ami-1"), ("web-3", None)]


def test_an_empty_batch_has_no_failures(cleaned: list[tuple[str, Any]]) -> None:
    assert finish.cleanup_messages({"Records": []}, env=None) == {  # type: ignore[arg-type]
        "batchItemFailures": []}
