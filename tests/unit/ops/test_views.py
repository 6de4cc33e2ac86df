"""The --output json shapes (ops/views.py): versioned, snake_case, no internal fields, the
same keys for every record whatever it holds."""

from __future__ import annotations

from amiforge.core.statuses import MEANINGS
from amiforge.ops import views

RAW_FAILED = {"recipe": "web", "build_id": "web-1", "status": "FAILED", "reason": "boom",
              "build_key": "web-1", "available_recipe": "web", "task_token": "secret-token",
              "created_at": "2026-12-01T00:00:00Z", "console_tail": "line",
              "attempts": [{"attempt": 1, "instance_id": "i-1", "outcome": "failed",
                            "reason": "timed out", "console_tail": "x", "extra": 1}]}
RAW_AVAILABLE = {"recipe": "web", "build_id": "web-2", "status": "AVAILABLE",
                 "image_id": "ami-2", "images": {"us-east-1": "ami-2", "eu-west-1": "ami-3"},
                 "attempts": [{"attempt": 1, "instance_id": "i-2", "outcome": "succeeded",
                               "reason": "AMIFORGE-RESULT: success"}]}


def test_history_drops_internal_fields_and_gives_every_build_the_same_keys() -> None:
    shown = views.history("web", [RAW_AVAILABLE, RAW_FAILED])
    assert (shown["version"], shown["recipe"]) == (1, "web")
    available, failed = shown["builds"]
    assert set(available) == set(failed)
    assert not {"build_key", "available_recipe", "task_token"} & set(failed)
    assert failed["image_id"] is None and failed["status_meaning"] == MEANINGS["FAILED"]
    assert available["images"] == {"us-east-1": "ami-2", "eu-west-1": "ami-3"}
    assert failed["attempts"] == [{"attempt": 1, "instance_id": "i-1", "outcome": "failed",
                                   "reason": "timed out", "console_tail": "x"}]
    assert available["attempts"][0]["console_tail"] is None


def test_latest_is_snake_case_not_the_custom_resource_attributes() -> None:
    image = {"ImageId": "ami-2", "ImageName": "web-x", "BuildId": "web-2",
             "CreationDate": "2026-12-01T00:00:00Z", "Region": "eu-west-1"}
    assert views.latest("web", image) == {
        "version": 1, "recipe": "web", "image_id": "ami-2", "image_name": "web-x",
        "build_id": "web-2", "creation_date": "2026-12-01T00:00:00Z", "region": "eu-west-1"}


def test_plan_and_detect_decisions_drop_the_build_key() -> None:
    decision = {"recipe": "web", "action": "build", "reason": "never built", "detail": "d",
                "build_key": "web-k", "base_ami": "ami-1", "previous_base_ami": None,
                "changes": ("build.script",)}
    (planned,) = views.plan([decision])["decisions"]
    assert "build_key" not in planned and planned["changes"] == ["build.script"]
    skipped = {"recipe": "old", "action": "skip", "reason": "retired", "detail": "at t"}
    report = {"trigger": "cli", "recipes": 2, "started": 1,
              "decisions": [{**decision, "build_id": "web-k", "outcome": "started"}, skipped]}
    shown = views.detect(report)
    assert set(shown) == {"version", "trigger", "recipes", "started", "decisions"}
    built, skip = shown["decisions"]
    assert set(built) == set(skip) and skip["build_id"] is None
    assert (built["build_id"], built["outcome"]) == ("web-k", "started")
