"""The sweeper's judgement: is a build over, so that what it left behind can go? Pure.

The sweeper (``steps/sweep.py``) finds amiforge's resources by tag, groups them by build,
and asks :func:`judge` about each build given its catalog record, the status of its Step
Functions execution, and the time. The answers:

* ``leave``: the build is live (BUILDING, its execution RUNNING, within its time budget),
  or the build is not in this stack's catalog (another amiforge stack in the same
  account and region tags its resources the same way: never touch those).
* ``clean``: the build is over (AVAILABLE, FAILED or PRUNED). Builders are terminated;
  images and snapshots go, except an AVAILABLE build's own image and its snapshots
  (retention decides about those).
* ``fail``: the record says BUILDING but the build is dead: its execution is no longer
  RUNNING (stopped, crashed, deleted), or it has outlived its time budget (the recipe's
  timeout per launch, the image wait, and a margin). The record is marked FAILED with
  the reason, then everything is cleaned. ``stop`` is set when the execution must be
  stopped first (it still claims to run).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from amiforge.core.retention import parse_time

LEAVE, CLEAN, FAIL = "leave", "clean", "fail"
RUNNING = "RUNNING"
OVER_STATUSES = frozenset({"AVAILABLE", "FAILED", "PRUNED"})
# Minutes (of the stack's "timeout minute") added to a build's budget before the sweeper
# calls it dead: Lambda retries, Step Functions backoff and queueing all take time.
MARGIN_MINUTES = 30


@dataclass(frozen=True)
class Verdict:
    action: str          # leave | clean | fail
    reason: str
    stop: bool = False   # stop the execution first (fail only)


def budget_minutes(*, timeout_minutes: int, retries: int, image_timeout_minutes: int,
                   margin_minutes: int = MARGIN_MINUTES) -> int:
    """The longest a build can legitimately take: every launch may wait its full timeout,
    then the image may stay pending for ``image_timeout_minutes``."""
    return (retries + 1) * timeout_minutes + image_timeout_minutes + margin_minutes


def judge(record: Mapping[str, Any] | None, execution_status: str | None, *, now: datetime,
          budget: timedelta) -> Verdict:
    """Decide about one build. ``execution_status`` is DescribeExecution's status, or
    None when the execution does not exist (or the record names none)."""
    if record is None:
        return Verdict(LEAVE, "not in this stack's catalog (another stack's build?)")
    status = record.get("status")
    if status in OVER_STATUSES:
        return Verdict(CLEAN, f"build is {status}")
    if status != "BUILDING":
        return Verdict(LEAVE, f"unknown status {status!r}")
    if execution_status is None:
        return Verdict(FAIL, "the build's execution no longer exists; it ended without "
                             "recording a result")
    if execution_status != RUNNING:
        return Verdict(FAIL, f"the build's execution is {execution_status} but the record "
                             "was still BUILDING (stopped or crashed mid-way)")
    started = record.get("created_at")
    if started and now - parse_time(started) > budget:
        hours = budget.total_seconds() / 3600
        return Verdict(FAIL, f"the build ran longer than its budget ({hours:.1f} h: the "
                             "recipe's timeout per launch, the image wait and a margin)",
                       stop=True)
    return Verdict(LEAVE, "build in progress")
