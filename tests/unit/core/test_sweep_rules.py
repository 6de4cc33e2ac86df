"""The sweeper's judgement of one build: leave it, clean it, or fail and clean it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from amiforge.core.sweep import CLEAN, FAIL, LEAVE, budget_minutes, judge

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BUDGET = timedelta(hours=5)


def record(status: str, started_hours_ago: float = 1) -> dict:
    created = NOW - timedelta(hours=started_hours_ago)
    return {"recipe": "web", "build_id": "web-1", "status": status,
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}


def test_a_build_not_in_this_catalog_is_left_alone() -> None:
    verdict = judge(None, None, now=NOW, budget=BUDGET)
    assert verdict.action == LEAVE
    assert "not in this stack's catalog" in verdict.reason


@pytest.mark.parametrize("status", ["AVAILABLE", "FAILED", "PRUNED"])
def test_a_finished_build_is_cleaned(status: str) -> None:
    verdict = judge(record(status), "SUCCEEDED", now=NOW, budget=BUDGET)
    assert (verdict.action, verdict.reason, verdict.stop) == (CLEAN, f"build is {status}", False)


def test_a_running_build_within_its_budget_is_left_alone() -> None:
    assert judge(record("BUILDING", 4.9), "RUNNING", now=NOW, budget=BUDGET).action == LEAVE


@pytest.mark.parametrize("execution", ["ABORTED", "FAILED", "TIMED_OUT", "SUCCEEDED"])
def test_building_with_an_ended_execution_is_failed(execution: str) -> None:
    verdict = judge(record("BUILDING"), execution, now=NOW, budget=BUDGET)
    assert verdict.action == FAIL
    assert verdict.stop is False
    assert f"execution is {execution}" in verdict.reason


def test_building_whose_execution_is_gone_is_failed() -> None:
    verdict = judge(record("BUILDING"), None, now=NOW, budget=BUDGET)
    assert verdict.action == FAIL
    assert "no longer exists" in verdict.reason


def test_building_past_its_budget_is_stopped_and_failed() -> None:
    verdict = judge(record("BUILDING", 5.1), "RUNNING", now=NOW, budget=BUDGET)
    assert (verdict.action, verdict.stop) == (FAIL, True)
    assert "longer than its budget (5.0 h" in verdict.reason


def test_an_unknown_status_is_left_alone() -> None:
    assert judge(record("WEIRD"), None, now=NOW, budget=BUDGET).action == LEAVE


def test_budget_covers_every_launch_the_image_wait_and_a_margin() -> None:
    assert budget_minutes(timeout_minutes=45, retries=2, image_timeout_minutes=240,
                          margin_minutes=30) == 3 * 45 + 240 + 30
