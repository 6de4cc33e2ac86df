"""The end of every build: clean up what it started, on success and on failure.

``finish`` runs after a good build: the builder is terminated. ``record_failure`` runs on
every failure path: builders terminated, any image this build made deregistered with its
snapshots, the catalog record FAILED with the reason and the console tail. Both send a
cleanup message (SABS's queue): the cleanup function (:mod:`amiforge.steps.cleanup`)
re-checks later. RecordFailure always does; Finish only when its own cleanup did not end
clean (:func:`needs_recheck`), so a good build usually costs no consumer invocation.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import messaging
from amiforge.aws.catalog import AVAILABLE
from amiforge.core.failures import failure_reason, rejected_reason
from amiforge.core.hashing import build_key
from amiforge.core.userdata import parse_console
from amiforge.errors import AmiforgeError
from amiforge.steps.cleanup import cleanup_build
from amiforge.steps.env import StepEnv
from amiforge.steps.latest import sync_latest

__all__ = ["finish", "needs_recheck", "record_failure"]

log = logging.getLogger(__name__)


def finish(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    build = state["build"]
    image_id = state.get("image", {}).get("image_id")
    done = cleanup_build(env, build["recipe"], build["build_id"], keep_image=image_id,
                         regions=build.get("regions", []),
                         reason=f"a stray image of build {build['build_id']}")
    recheck = needs_recheck(done)
    if recheck:
        messaging.send_cleanup(env.client("sqs"), env.cleanup_queue_url,
                               {"recipe": build["recipe"], "build_id": build["build_id"],
                                "status": "AVAILABLE", "keep_image": image_id,
                                "regions": build.get("regions", [])})
    return {"status": "AVAILABLE", "image_id": image_id, "recheck": recheck, **done}


def needs_recheck(done: Mapping[str, Any]) -> bool:
    """Whether a good build's cleanup asks the cleanup queue for a second look.

    Not when Finish saw a clean end: every region answered, the build stack (if any) is
    gone, and there was nothing but builders to remove (no stray image deregistered, none
    kept). Its TerminateInstances calls were accepted, and EC2 finishes those on its own;
    everything it listed was made minutes before (the builder, the tester, the copies),
    long past the lag of a tag-filtered listing. Anything else (a region that failed, a
    build stack not deleted, a stray image, which means a CreateImage raced this build,
    an image kept) is looked at again. A Finish that fails for good is the sweeper's.
    """
    return bool(done.get("errors") or isinstance(done.get("stack_deleted"), str)
                or done.get("deregistered") or done.get("kept"))


def record_failure(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """Record FAILED first, then clean up: a cleanup that fails (a region unreachable, a
    call denied) must not leave the record BUILDING. The cleanup's own failures are
    reported and left to the cleanup queue and the sweeper."""
    build = state.get("build") or {}
    reason = failure_reason(state.get("error"))
    if not build.get("build_id"):
        return {"status": "FAILED", "reason": reason}
    record: Mapping[str, Any] = env.catalog.get(build["recipe"], build["build_id"]) or {}
    if (state.get("error") or {}).get("Error") == "ApprovalRejected" and \
            record.get("reject_reason"):
        # `amiforge reject` recorded who and why before it answered the task: the record
        # is the source (the task failure's cause is bounded and may be dropped).
        reason = rejected_reason(record["reject_reason"], record.get("rejected_by"))
    tail = record.get("console_tail")
    instance_id = state.get("launch", {}).get("instance_id") or record.get("instance_id")
    if not tail and instance_id:
        try:
            tail = parse_console(ec2_api.console_output(env.client("ec2"), instance_id)).tail
        except Exception:  # the console is a nicety; cleanup must go on regardless
            tail = None
    if record.get("status") == AVAILABLE:
        # Register marked it and died before finishing or undoing (a crash, a timeout):
        # undo it here, and put latest back on what it names without this build.
        env.catalog.unmark_available(build["recipe"], build["build_id"])
        sync_latest(env, build["recipe"])
    marked = env.catalog.mark_failed(build["recipe"], build["build_id"], reason=reason,
                                     console_tail=(tail or "")[-4000:] or None)
    if not marked and not record:
        # Failed in Resolve before any record existed: record it, or `status` and the
        # retry policy would never see this failure.
        env.catalog.record_failed(_record_of_start(build, reason))
    try:
        done = cleanup_build(env, build["recipe"], build["build_id"], keep_image=None,
                             regions=build.get("regions", []),
                             reason=f"build {build['build_id']} failed")
    except AmiforgeError as err:
        done = {"errors": {"": str(err)}}
    summary = {"status": "FAILED", "recipe": build["recipe"], "build_id": build["build_id"],
               "reason": reason}
    messaging.notify(env.client("sns"), env.topic_arn,
                     f"amiforge: {build['recipe']} build failed", summary)
    messaging.send_cleanup(env.client("sqs"), env.cleanup_queue_url,
                           {"recipe": build["recipe"], "build_id": build["build_id"],
                            "status": "FAILED", "keep_image": None,
                            "regions": build.get("regions", [])})
    return {**summary, **done}


def _record_of_start(build: dict[str, Any], reason: str) -> dict[str, Any]:
    """A failed build's record from the execution's input (``build["start"]``, set by the
    state machine's ResolveFailed state), for a build that failed before Resolve wrote one."""
    start = build.get("start") or {}
    record = {"recipe": build["recipe"], "build_id": build["build_id"], "reason": reason,
              "trigger": start.get("trigger"), "recipe_hash": start.get("recipe_hash"),
              "base_ami": start.get("base_ami")}
    if isinstance(start.get("recipe_hash"), str) and isinstance(start.get("base_ami"), str):
        # Not a recipe name (ValueError): the record still says what failed.
        with contextlib.suppress(ValueError):
            record["build_key"] = build_key(build["recipe"], start["recipe_hash"],
                                            start["base_ami"])
    return {k: v for k, v in record.items() if v is not None}
