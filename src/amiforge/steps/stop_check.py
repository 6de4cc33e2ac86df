"""The fallback for lost stop events: resume every build whose builder already stopped.

EventBridge delivers EC2's state-change events at least once *in the normal case*; an
event can still be lost to us (the instance-state function throttled out of its async
retries, a rule briefly disabled during a stack update). Without a fallback the build
would sit in AwaitStop until the recipe's timeout and then fail a build that succeeded.

So the instance-state function also runs on a schedule (stack parameter
``StopCheckSchedule``, ``rate(1 minute)`` by default) and calls :func:`check_waiting`:

1. one Query of the ``#waiting`` markers (:mod:`amiforge.aws.waits`): the builds in
   AwaitStop now, each with its instance and task token;
2. one DescribeInstances of amiforge's builders and testers (by tag);
3. for each marker whose instance is stopped (or terminated, or gone for longer than
   :data:`MISSING_GRACE_SECONDS`): claim the token on the record, judge a stopped
   builder and create its image as the stop event would have
   (:mod:`amiforge.steps.stop_verdict`), SendTaskSuccess with the state (and verdict
   and image), then remove the marker. A token
   already answered (the event did arrive), timed out or no longer on the record is just
   removed; one another resumer claimed less than :data:`CLAIM_LEASE_SECONDS` ago is left
   to it. A builder still running is left alone.

The ``terminated`` state is not delivered by the rule (the one Finish causes is the only
common one, and needs nothing): a builder or tester terminated before it stopped is found
here, within one ``StopCheckSchedule`` period.

A marker whose resume fails unexpectedly is logged with its build id and counted in the
report's ``errors``; the other markers are still served (the failed one stays, and the
next check tries it again).

Cost when nothing waits: one Query returning nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import stepfunctions as sfn_api
from amiforge.aws.task_claims import TaskClaims
from amiforge.aws.waits import Waiting, WaitingList
from amiforge.core.tags import BUILDER, ROLE, TESTER
from amiforge.steps.env import StepEnv
from amiforge.steps.stop_verdict import stop_context, verdict_at_stop

DONE_STATES = frozenset({"stopped", "terminated", "shutting-down"})
# EC2 is eventually consistent: a builder launched a moment ago may not be described
# yet. Only a marker older than this whose instance is unknown counts as "gone".
MISSING_GRACE_SECONDS = 600

# A resumer that claimed a token and died (killed, or timed out) leaves the claim: after
# this long another resumer (the next stop check) may take it. Longer than the Timeout of
# the functions that claim (instance-state and await-stop: 60 s), so a live holder is
# never overtaken.
CLAIM_LEASE_SECONDS = 90

log = logging.getLogger(__name__)


def _age_seconds(since: str, now: datetime) -> float:
    try:
        started = datetime.strptime(since, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return float("inf")
    return (now - started).total_seconds()


def check_waiting(env: StepEnv) -> dict[str, Any]:
    waits = WaitingList(env.client("dynamodb"), env.catalog_table)
    waiting = list(waits.all())
    report: dict[str, Any] = {"check": "waiting", "waiting": len(waiting), "resumed": [],
                              "cleared": 0, "running": 0, "errors": 0,
                              "claimed_elsewhere": 0}
    if not waiting:
        return report
    ec2 = env.client("ec2")
    # Builders, and testers (they wait in the test phase's AwaitTest the same way).
    states = {i["InstanceId"]: i.get("State", {}).get("Name", "")
              for i in ec2_api.instances_tagged(ec2, {ROLE: (BUILDER, TESTER)},
                                                live_only=False)}
    now = datetime.now(UTC)
    for wait in waiting:
        state = states.get(wait.instance_id)
        if state is None and _age_seconds(wait.since, now) >= MISSING_GRACE_SECONDS:
            state = "terminated"  # long gone: EC2 forgets terminated instances
        if state not in DONE_STATES:
            report["running"] += 1
            continue
        try:
            _resume(env, waits, wait, state or "terminated", report)
        except Exception:  # one marker's failure must not starve the others
            log.exception("stop check: resuming build %s (instance %s) failed",
                          wait.build_id, wait.instance_id)
            report["errors"] += 1
    return report


def _resume(env: StepEnv, waits: WaitingList, wait: Waiting, state: str,
            report: dict[str, Any]) -> None:
    def output() -> dict[str, Any]:
        # The builder's verdict and image here too, from what AwaitStop left on the
        # record (a tester's wait has none: it is only resumed).
        record = env.catalog.get(wait.recipe, wait.build_id)
        context = (stop_context(record, wait.instance_id)
                   if record and not record.get("tester_instance_id") else None)
        verdict = verdict_at_stop(env, context, state) if context else {}
        return {"state": state, "source": "schedule", **verdict}

    resumed = resume_claimed(env, waits, wait, output, clear_unanswered=True)
    if resumed:
        report["resumed"].append(wait.build_id)
    elif resumed is None:
        report["claimed_elsewhere"] += 1
    else:
        report["cleared"] += 1  # the event won, or the task timed out: nothing waits


def resume_claimed(env: StepEnv, waits: WaitingList, wait: Waiting,
                   output: dict[str, Any] | Callable[[], dict[str, Any]], *,
                   clear_unanswered: bool = False) -> bool | None:
    """Claim ``wait``'s token on the record, resume the task with ``output`` (or what
    ``output()`` returns, computed only once the claim is ours), release the token.

    True: resumed, marker removed. False: nothing waits on this token any more (marker
    removed if the record no longer holds the token; if the task itself refused the
    answer, only with ``clear_unanswered``: a retried AwaitStop may be writing the same
    marker with its newer token, and the check is the one to sort it out). None: another
    resumer holds the claim (marker left to it)."""
    claims = TaskClaims(env.catalog)
    claim = claims.claim(wait.recipe, wait.build_id, wait.token,
                         lease_seconds=CLAIM_LEASE_SECONDS)
    if claim == "held":
        return None
    if claim == "gone":
        waits.remove(wait.build_id, wait.instance_id)
        return False
    try:
        answer = output() if callable(output) else output
        resumed = sfn_api.resume(env.client("stepfunctions"), wait.token, answer)
    except Exception:
        # Not answered: give the claim back so the next resumer (a retried event, the
        # next check) tries at once rather than after the lease.
        claims.release(wait.recipe, wait.build_id, wait.token, answered=False)
        raise
    claims.release(wait.recipe, wait.build_id, wait.token)
    if resumed or clear_unanswered:
        waits.remove(wait.build_id, wait.instance_id)
    return resumed
