"""The sweeper's judgement: is a build over, so that what it left behind can go? Pure.

The sweeper (``steps/sweep.py``) finds amiforge's resources by tag, groups them by build,
and asks :func:`judge` about each build given its catalog record, the status of its Step
Functions execution, and the time. The answers:

* ``leave``: the build is live (BUILDING, its execution RUNNING, within its time budget),
  or the build is not in this stack's catalog (another amiforge stack in the same
  account and region tags its resources the same way: never touch those).
* ``clean``: the build is over (AVAILABLE, FAILED, CANCELLED or PRUNED). Builders are terminated;
  images and snapshots go, except an AVAILABLE build's own image and its snapshots
  (retention decides about those).
* ``fail``: the record says BUILDING but the build is dead: its execution is no longer
  RUNNING (stopped, crashed, deleted), or it has outlived its time budget (every wait
  the state machine may make, see :func:`budget_minutes`). The record is marked FAILED with
  the reason, then everything is cleaned. ``stop`` is set when the execution must be
  stopped first (it still claims to run).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from amiforge.core.model import Recipe
from amiforge.core.retention import parse_time
from amiforge.core.statuses import IN_FLIGHT, OVER, BuildStatus

LEAVE, CLEAN, FAIL = "leave", "clean", "fail"
RUNNING = "RUNNING"
OVER_STATUSES = OVER
# Minutes (of the stack's "timeout minute") added to a build's budget before the sweeper
# calls it dead: Lambda retries, Step Functions backoff and queueing all take time.
MARGIN_MINUTES = 30
# The state machine's Retry on LaunchThrottled (Launch and CreateBuildStack, deploy/state_machine.yaml):
# IntervalSeconds 2, BackoffRate 1.5, MaxDelaySeconds 30, MaxAttempts 99.
LAUNCH_THROTTLE_RETRY = (2.0, 1.5, 30.0, 99)


def backoff_ceiling_seconds(interval: float, rate: float, max_delay: float,
                            attempts: int) -> float:
    """The longest a Step Functions Retry can wait in all: the sum of its ``attempts``
    delays, each ``interval * rate**n`` capped at ``max_delay`` (full jitter only
    shortens them)."""
    return sum(min(interval * rate ** n, max_delay) for n in range(attempts))


LAUNCH_THROTTLE_SECONDS = backoff_ceiling_seconds(*LAUNCH_THROTTLE_RETRY)  # about 47 min
# Verify's Retry on ConsoleNotReady (a stopped builder with no marker yet, deploy/state_machine.yaml):
# IntervalSeconds 3, BackoffRate 2, MaxAttempts 4, no cap; then the attempt has failed.
CONSOLE_RETRY = (3.0, 2.0, float("inf"), 4)
CONSOLE_WAIT_SECONDS = backoff_ceiling_seconds(*CONSOLE_RETRY)  # 45 s


@dataclass(frozen=True)
class Verdict:
    action: str          # leave | clean | fail
    reason: str
    stop: bool = False   # stop the execution first (fail only)


def budget_minutes(*, timeout_minutes: int, retries: int, image_timeout_minutes: int,
                   copies: bool = True, build_stack: bool = True,
                   seconds_per_minute: int = 60,
                   margin_minutes: int = MARGIN_MINUTES,
                   approval_minutes: int = 0) -> int:
    """The longest a build can legitimately take, in the stack's timeout minutes::

        (retries + 1) * (timeout_minutes + throttle     every launch: LaunchThrottled
                         + console)                     backoff, AwaitStop's timeout, then
                                                        Verify's wait for a late marker
      + timeout_minutes          if build_stack         AwaitBuildStack (build.cloudformation)
      + image_timeout_minutes                           AwaitImage
      + image_timeout_minutes    if copies              Distribute's copy wait (image.regions)
      + approval_minutes                                AwaitApproval (release.approval:
                                                        manual: its timeout in minutes)
      + margin_minutes                                  Lambda retries, queueing

    ``throttle`` is the LaunchThrottled Retry's backoff ceiling
    (:data:`LAUNCH_THROTTLE_SECONDS`, real seconds) and ``console`` Verify's ConsoleNotReady
    ceiling (:data:`CONSOLE_WAIT_SECONDS`), each in minutes of ``seconds_per_minute``
    seconds, rounded up. Every failed attempt counts against ``retries`` (failure marker,
    timeout, no marker), so each of the ``retries + 1`` launches may take all of it. A CloudFormation build launches once, so counting ``retries + 1``
    launches for it only errs long. ``copies`` and ``build_stack`` default to True: a
    caller that does not know the recipe gets the longest budget, since a live build must
    never be swept (a dead one whose execution still runs is only swept later).
    """
    throttle = math.ceil(LAUNCH_THROTTLE_SECONDS / max(1, seconds_per_minute))
    console = math.ceil(CONSOLE_WAIT_SECONDS / max(1, seconds_per_minute))
    return ((retries + 1) * (timeout_minutes + throttle + console)
            + (timeout_minutes if build_stack else 0)
            + image_timeout_minutes
            + (image_timeout_minutes if copies else 0)
            + approval_minutes
            + margin_minutes)


def recipe_budget_minutes(recipe: Recipe, *, image_timeout_minutes: int,
                          seconds_per_minute: int = 60,
                          margin_minutes: int = MARGIN_MINUTES) -> int:
    """:func:`budget_minutes` for ``recipe``: its timeout and retries, a copy wait only if
    it copies its image (``image.regions``), a build-stack wait only if it builds from
    ``build.cloudformation``; plus the test phase's wait for a recipe with ``test:``."""
    base = budget_minutes(timeout_minutes=recipe.build.timeout_minutes,
                          retries=recipe.build.retries,
                          image_timeout_minutes=image_timeout_minutes,
                          copies=bool(recipe.image.regions),
                          build_stack=recipe.builder == "cloudformation",
                          seconds_per_minute=seconds_per_minute,
                          margin_minutes=margin_minutes,
                          approval_minutes=(recipe.release.approval_timeout_hours * 60
                                            if recipe.release.manual else 0))
    if recipe.test is None:
        return base
    # The test phase (steps/test_phase.py): one more launch (its LaunchThrottled backoff),
    # AwaitTest's timeout, VerifyTest's wait for a late marker.
    throttle = math.ceil(LAUNCH_THROTTLE_SECONDS / max(1, seconds_per_minute))
    console = math.ceil(CONSOLE_WAIT_SECONDS / max(1, seconds_per_minute))
    return base + recipe.test.timeout_minutes + throttle + console


def judge(record: Mapping[str, Any] | None, execution_status: str | None, *, now: datetime,
          budget: timedelta) -> Verdict:
    """Decide about one build. ``execution_status`` is DescribeExecution's status, or
    None when the execution does not exist (or the record names none)."""
    if record is None:
        return Verdict(LEAVE, "not in this stack's catalog (another stack's build?)")
    status = record.get("status")
    if status in OVER_STATUSES:
        return Verdict(CLEAN, f"build is {status}")
    if status == BuildStatus.REVOKED:  # its images wait for `amiforge release`
        return Verdict(LEAVE, "build is REVOKED: its image is kept for `amiforge release`")
    if status not in IN_FLIGHT:  # STARTING: started, Resolve not yet run
        return Verdict(LEAVE, f"unknown status {status!r}")
    if execution_status is None:
        return Verdict(FAIL, "the build's execution no longer exists; it ended without "
                             "recording a result")
    if execution_status != RUNNING:
        return Verdict(FAIL, f"the build's execution is {execution_status} but the record "
                             f"was still {status} (stopped or crashed mid-way)")
    started = record.get("created_at")
    if started and now - parse_time(started) > budget:
        hours = budget.total_seconds() / 3600
        return Verdict(FAIL, f"the build ran longer than its budget ({hours:.1f} h: every "
                             "launch's backoff and timeout, the image and copy waits, a margin)",
                       stop=True)
    return Verdict(LEAVE, "build in progress")
