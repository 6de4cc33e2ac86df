"""Following instance refreshes by event: AwaitRefresh, AWS's refresh events, the check.

RollOut starts the refreshes; the state machine's AwaitRefresh task
(``lambda:invoke.waitForTaskToken``) then calls :func:`park`: it notes the token in the
catalog's ``#refresh-waits`` partition, one marker per running refresh
(:mod:`amiforge.aws.refresh_waits`), and only then reads the refreshes itself, since one
may have ended already (and its event gone by). After that the execution costs nothing
while the group's instances are replaced: no Wait loop, whatever the refresh's length.

Three callers can then answer the token, and the first one wins (the others find the
token answered, or no marker):

* :func:`on_refresh_event`, on AWS's "EC2 Auto Scaling Instance Refresh Succeeded /
  Failed / Cancelled / Rollback Succeeded / Rollback Failed" events (the
  ``RefreshStateRule``, in the stack's home region). The event is untrusted: it only
  *names* a group and a refresh. One GetItem finds the marker for that region, group and
  refresh id (a group or refresh no build waits for is ignored, whatever the event
  says); the statuses are then read again with DescribeInstanceRefreshes.
* :func:`check_refreshes`, on the refresh check's schedule (``{"check": "refreshes"}``):
  one Query of the markers, each wait settled the same way. This is the fallback for a
  lost event (events are best effort) and the way groups in other regions are followed
  (their events arrive in those regions, where this stack has no rule).
* :func:`park` itself, when every refresh ended before it parked the token.

A settled wait answers SendTaskSuccess with the rollout (``$.rollout``: outcome
``succeeded`` or ``failed``, with the reason); ``Refreshed?`` then goes on to Built or to
RollBackRelease. A wait that outlives the refresh timeout (6 hours) ends on the task's
own timeout; RefreshTimedOut (:func:`time_out`) then rolls the refreshes still running
back and fails the outcome, as the bounded poll did, and the check drops the markers.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from amiforge.aws import autoscaling as asg_api
from amiforge.aws import stepfunctions as sfn_api
from amiforge.aws.catalog import now_iso
from amiforge.aws.refresh_waits import RefreshWait, RefreshWaitList, marker_key
from amiforge.core.rollout import overall, refresh_outcome
from amiforge.steps.env import StepEnv

log = logging.getLogger(__name__)
# Markers of a wait whose task timed out are dropped this long after its deadline.
STALE_MARGIN_SECONDS = 600
# The detail-types AWS documents for a refresh that ended (Rollback Started does not end it).
FINAL_EVENTS = frozenset({
    "EC2 Auto Scaling Instance Refresh Succeeded",
    "EC2 Auto Scaling Instance Refresh Failed",
    "EC2 Auto Scaling Instance Refresh Cancelled",
    "EC2 Auto Scaling Instance Refresh Rollback Succeeded",
    "EC2 Auto Scaling Instance Refresh Rollback Failed"})


def handle(event: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """The await-refresh function's four callers, told apart by the event's shape (the
    schema for each was checked by :func:`amiforge.core.events.check_refresh_wait`)."""
    if "token" in event:
        return park(event, env)
    if event.get("check") == "refreshes":
        return check_refreshes(env)
    if event.get("timed_out") is True:
        return time_out(event, env)
    return on_refresh_event(event, env)


def _waits(env: StepEnv) -> RefreshWaitList:
    return RefreshWaitList(env.client("dynamodb"), env.catalog_table)


def park(event: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """Input: {token, build: {recipe, build_id}, rollout}. Parks the token, one marker per
    running refresh, then settles the wait if it can already."""
    build, rollout = event["build"], dict(event["rollout"])
    waits = _waits(env)
    since = now_iso()
    deadline = int(rollout.get("timeout_seconds") or 0)
    marker: RefreshWait | None = None
    for refresh in rollout.get("refreshes") or []:
        if refresh.get("outcome") != "running":
            continue
        marker = RefreshWait(recipe=build["recipe"], build_id=build["build_id"],
                             region=refresh["region"],
                             auto_scaling_group=refresh["auto_scaling_group"],
                             refresh_id=refresh["refresh_id"], token=event["token"],
                             since=since, deadline_seconds=deadline, rollout=rollout)
        waits.add(marker)
    if marker is None:  # nothing running: answer at once
        marker = RefreshWait(recipe=build["recipe"], build_id=build["build_id"],
                             region=env.region, auto_scaling_group="", refresh_id="",
                             token=event["token"], since=since, deadline_seconds=deadline,
                             rollout=rollout)
    return settle(env, waits, marker, source="poll")


def on_refresh_event(event: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    if event["detail-type"] not in FINAL_EVENTS:
        return {"ignored": "not a final refresh event"}
    detail = event["detail"]
    waits = _waits(env)
    wait = waits.get(event["region"], detail["AutoScalingGroupName"],
                     detail["InstanceRefreshId"])
    if wait is None:
        return {"ignored": "no build waits for this refresh"}
    return settle(env, waits, wait, source="event")


def check_refreshes(env: StepEnv) -> dict[str, Any]:
    """The fallback and the other regions' watch: settle every wait the markers name."""
    waits = _waits(env)
    markers = list(waits.all())
    report: dict[str, Any] = {"check": "refreshes", "waiting": len(markers), "resumed": [],
                              "pending": 0, "dropped": 0, "errors": 0}
    now = datetime.now(UTC)
    seen: set[str] = set()
    for wait in markers:
        if wait.token in seen:  # the refreshes of one build share a token: settle it once
            continue
        seen.add(wait.token)
        if _age_seconds(wait.since, now) > wait.deadline_seconds + STALE_MARGIN_SECONDS:
            # The task timed out long ago (RefreshTimedOut): nothing waits on this token.
            _remove(waits, wait)
            report["dropped"] += 1
            continue
        try:
            outcome = settle(env, waits, wait, source="schedule")
        except Exception:  # one wait's failure must not starve the others
            log.exception("refresh check: settling build %s failed", wait.build_id)
            report["errors"] += 1
            continue
        if outcome.get("resumed"):
            report["resumed"].append(wait.build_id)
        elif outcome.get("outcome") == "running":
            report["pending"] += 1
    return report


def _age_seconds(since: str, now: datetime) -> float:
    try:
        started = datetime.strptime(since, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return float("inf")
    return (now - started).total_seconds()


def judge(env: StepEnv, rollout: dict[str, Any]) -> dict[str, Any]:
    """The rollout with each running refresh's status read again from Auto Scaling;
    ``outcome`` running, succeeded or failed (with the reason)."""
    rollout = dict(rollout)
    refreshes = [dict(r) for r in rollout.get("refreshes") or []]
    for refresh in refreshes:
        if refresh.get("outcome") != "running":
            continue
        found = asg_api.refreshes(env.client("autoscaling", refresh["region"]),
                                  refresh["auto_scaling_group"], refresh["refresh_id"])
        refresh["status"] = found[0].status if found else "Missing"
        refresh["reason"] = found[0].reason if found else "the refresh is gone"
        refresh["outcome"] = refresh_outcome(found[0].status) if found else "failed"
    rollout["refreshes"] = refreshes
    rollout["outcome"] = overall([r["outcome"] for r in refreshes])
    _explain(rollout)
    return rollout


def _explain(rollout: dict[str, Any]) -> None:
    if rollout["outcome"] != "failed":
        return
    bad = next(r for r in rollout["refreshes"] if r["outcome"] == "failed")
    rollout["reason"] = (f"instance refresh {bad['refresh_id']} of Auto Scaling group "
                         f"{bad['auto_scaling_group']} in {bad['region']} ended "
                         f"{bad['status']}: {bad['reason'] or 'no reason given'}")


def settle(env: StepEnv, waits: RefreshWaitList, wait: RefreshWait, *,
           source: str) -> dict[str, Any]:
    """Read the wait's refreshes; answer its token once none runs (or one failed), with
    the outcome recorded first; remove its markers once answered. Running: leave all."""
    rollout = judge(env, wait.rollout)
    if rollout["outcome"] == "running":
        return {"outcome": "running", "source": source}
    record(env, wait.recipe, wait.build_id, rollout)
    resumed = sfn_api.resume(env.client("stepfunctions"), wait.token, rollout)
    _remove(waits, wait)
    log.info("refresh wait of build %s settled (%s, by %s)", wait.build_id,
             rollout["outcome"], source)
    return {"resumed": resumed, "outcome": rollout["outcome"], "source": source}


def time_out(event: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """RefreshTimedOut: AwaitRefresh outlived the refresh timeout. The refreshes still
    running are rolled back by amiforge and the outcome is failed (RollBackRelease next)."""
    build = event["build"]
    rollout = judge(env, event["rollout"])
    for refresh in rollout["refreshes"]:
        if refresh["outcome"] == "running":
            asg_api.roll_back(env.client("autoscaling", refresh["region"]),
                              refresh["auto_scaling_group"])
            refresh.update(outcome="failed", reason="timed out: amiforge rolled it back")
    rollout["outcome"] = overall([r["outcome"] for r in rollout["refreshes"]])
    if rollout["outcome"] == "running":  # cannot stay running past the deadline
        rollout["outcome"] = "failed"
    _explain(rollout)
    record(env, build["recipe"], build["build_id"], rollout)
    return rollout


def _remove(waits: RefreshWaitList, wait: RefreshWait) -> None:
    for refresh in wait.rollout.get("refreshes") or []:
        waits.remove(marker_key(str(refresh.get("region")),
                                str(refresh.get("auto_scaling_group")),
                                str(refresh.get("refresh_id"))), wait.token)


def record(env: StepEnv, recipe: str, build_id: str, rollout: dict[str, Any]) -> None:
    env.catalog.update(recipe, build_id, rollout={
        k: v for k, v in rollout.items() if k != "timeout_seconds"})
