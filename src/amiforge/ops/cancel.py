"""``amiforge cancel BUILD_ID|RECIPE...``: stop running builds and remove what they started.

The order matters:

1. **The record first**: CANCELLED with the reason, conditionally on a live status
   (:data:`LIVE`). From then on a step still in flight cannot make the build AVAILABLE
   (Register's write is conditional on BUILDING) nor FAILED, and a build that finished a
   moment ago keeps its result: nothing else is touched, and the caller is told.
2. **StopExecution**: the state machine takes no further step; the build's ``#waiting``
   marker (if it was waiting for its builder to stop) goes with it.
3. **Cleanup**, the very one a failed build gets (:func:`steps.cleanup.cleanup_build`):
   every builder terminated, every image of the build deregistered with its snapshots
   (home region and every copy region), its build stack deleted.
4. **A cleanup message** for a second look: a Lambda that was inside RunInstances or
   CreateImage when the execution stopped can still create something after step 3. The
   sweeper, which counts CANCELLED as over, is the last net.

A build that is already over (AVAILABLE, FAILED, CANCELLED, PRUNED) is refused with
exit 2 and nothing touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amiforge.aws import messaging
from amiforge.aws import stepfunctions as sfn_api
from amiforge.aws.catalog import CANCELLED, IN_FLIGHT, STARTING
from amiforge.aws.waits import WaitingList
from amiforge.core.deletion import valid_build_id
from amiforge.errors import AwsCallFailed, InvalidInput, NotFound
from amiforge.ops.builds import execution_arn_for
from amiforge.steps.cleanup import cleanup_build
from amiforge.steps.env import StepEnv

# Statuses of a build that is still going (STARTING: started, Resolve not yet run).
LIVE = tuple(sorted(IN_FLIGHT))
DEFAULT_REASON = "cancelled with `amiforge cancel`"


def _recipes_of(target: str) -> list[str]:
    """Every recipe ``target`` could be a build id of, longest first: a recipe name may
    itself contain "-<20 hex>" (``a-0123456789abcdef0123``), so each cut is tried."""
    cuts = [i for i, char in enumerate(target) if char == "-"]
    return [target[:cut] for cut in reversed(cuts) if valid_build_id(target, target[:cut])]


def find_build(env: StepEnv, target: str) -> Mapping[str, Any]:
    """The catalog record ``target`` names: a build id, or a recipe's running build.

    A build whose execution runs but whose record Resolve has not written yet (the
    seconds after a publish or ``amiforge build``) is found by its execution: named by its
    build id, or the recipe's claimed ``last_build_id``.
    """
    for recipe in _recipes_of(target):
        record = env.catalog.get(recipe, target)
        unrecorded = record or _unrecorded(env, recipe, target)
        if unrecorded:
            return unrecorded
    builds = env.catalog.history(target)
    live = [b for b in builds if b.get("status") in LIVE]
    if live:
        return live[0]
    claimed = (env.store.current(target) or {}).get("last_build_id")
    if claimed and not any(b["build_id"] == claimed for b in builds):
        unrecorded = _unrecorded(env, target, claimed)
        if unrecorded:
            return unrecorded
    if builds:
        newest = builds[0]
        raise InvalidInput(f"recipe {target!r} has no running build (its newest, "
                           f"{newest['build_id']}, is {newest.get('status')}): nothing to "
                           "cancel")
    if env.store.current(target) is not None:
        raise InvalidInput(f"recipe {target!r} has never been built: nothing to cancel")
    raise NotFound(f"{target!r} is neither a build id nor a published recipe",
                   hint="see `amiforge status` and `amiforge history RECIPE`")


def _unrecorded(env: StepEnv, recipe: str, build_id: str) -> dict[str, Any] | None:
    """A running execution named ``build_id`` with no record yet, as a STARTING record."""
    arn = execution_arn_for(env, build_id)
    try:
        status = sfn_api.describe(env.client("stepfunctions"), arn)["status"]
    except AwsCallFailed as err:
        if err.code == "ExecutionDoesNotExist":
            return None
        raise
    if status != "RUNNING":
        return None
    return {"recipe": recipe, "build_id": build_id, "status": STARTING, "execution_arn": arn,
            "unrecorded": True}


def cancel(env: StepEnv, targets: list[str], *,
           reason: str = DEFAULT_REASON) -> list[dict[str, Any]]:
    """Cancel the build each target names; returns what was done for each.

    Every target is found and checked first: if one names no running build, nothing is
    cancelled (exit 2), so a typo never leaves half the list stopped.
    """
    records: dict[str, Mapping[str, Any]] = {}
    for target in targets:
        record = find_build(env, target)
        if record.get("status") not in LIVE:
            raise InvalidInput(f"build {record['build_id']} is already "
                               f"{record.get('status')}: nothing to cancel")
        records.setdefault(record["build_id"], record)
    return [_cancel_one(env, record, reason) for record in records.values()]


def _cancel_one(env: StepEnv, record: Mapping[str, Any], reason: str) -> dict[str, Any]:
    recipe, build_id = record["recipe"], record["build_id"]
    if record.get("unrecorded"):
        # Written here so the cancel is recorded; a Resolve in flight finds it there (its
        # conditional put does nothing) and the stopped execution takes no next step.
        env.catalog.announce({"recipe": recipe, "build_id": build_id,
                              "execution_arn": record["execution_arn"]})
    if not env.catalog.mark_cancelled(recipe, build_id, reason=reason, live=LIVE):
        status = (env.catalog.get(recipe, build_id) or record).get("status")
        raise InvalidInput(f"build {build_id} is already {status}: nothing to cancel")
    arn = record.get("execution_arn") or execution_arn_for(env, build_id)
    stopped = sfn_api.stop(env.client("stepfunctions"), arn, error="amiforge.Cancelled",
                           cause=reason)
    if record.get("instance_id"):
        # Its builder no longer stops for anyone: the stop check need not look for it.
        WaitingList(env.client("dynamodb"), env.catalog_table).remove(
            build_id, record["instance_id"])
    regions = list(record.get("regions") or [])
    done = cleanup_build(env, recipe, build_id, keep_image=None, regions=regions,
                         reason=f"build {build_id} cancelled")
    summary = {"status": CANCELLED, "recipe": recipe, "build_id": build_id, "reason": reason}
    messaging.notify(env.client("sns"), env.topic_arn,
                     f"amiforge: {recipe} build cancelled", summary)
    messaging.send_cleanup(env.client("sqs"), env.cleanup_queue_url,
                           {"recipe": recipe, "build_id": build_id, "status": CANCELLED,
                            "keep_image": None, "regions": regions})
    return {**summary, "execution_arn": arn, "execution_stopped": stopped, **done}
