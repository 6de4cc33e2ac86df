"""The end of every build: clean up what it started, on success and on failure.

``finish`` runs after a good build: the builder is terminated. ``record_failure`` runs on
every failure path: builders terminated, any image this build made deregistered with its
snapshots, the catalog record FAILED with the reason and the console tail. Both also send
a cleanup message (SABS's queue): the cleanup function re-checks later, so a crash here
still leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import messaging
from amiforge.aws.catalog import AVAILABLE
from amiforge.core.tags import BUILD_ID, RECIPE
from amiforge.core.userdata import parse_console
from amiforge.errors import AmiforgeError
from amiforge.steps.build_stack import delete_build_stack
from amiforge.steps.env import StepEnv
from amiforge.steps.latest import sync_latest

_log = logging.getLogger(__name__)


def cleanup_build(env: StepEnv, build_id: str, *, keep_image: str | None,
                  regions: Iterable[str] = ()) -> dict[str, Any]:
    """Terminate every builder of ``build_id``; deregister its images in the home region
    and ``regions`` (with their snapshots), except ``keep_image`` and any image the
    catalog lists for this build as AVAILABLE: a cleanup must never remove a good image."""
    ec2 = env.client("ec2")
    instances = [i["InstanceId"] for i in ec2_api.instances_tagged(ec2, {BUILD_ID: build_id})]
    terminated = ec2_api.terminate(ec2, instances)
    removed: dict[str, list[str]] = {}
    protected: set[str] | None = None
    for region in dict.fromkeys([env.region, *regions]):
        regional = env.client("ec2", region)
        for image in ec2_api.images_tagged(regional, BUILD_ID, build_id):
            if protected is None:
                protected = _available_images(env, build_id, image)
            if image["ImageId"] == keep_image or image["ImageId"] in protected:
                continue
            removed[image["ImageId"]] = ec2_api.deregister_with_snapshots(
                regional, image["ImageId"])
    # Last, and on its own: a CloudFormation-built build has a stack, and a failure to
    # delete it (throttled, a missing permission) must not stop the EC2 cleanup above.
    # The caller decides: finish reports it; the cleanup queue retries the message.
    try:
        stack_deleted: bool | str = delete_build_stack(env, build_id)
    except AmiforgeError as err:
        _log.error("could not delete the build stack of %s: %s", build_id, err)
        stack_deleted = f"error: {err}"
    return {"terminated": terminated, "deregistered": removed, "stack_deleted": stack_deleted}


def _available_images(env: StepEnv, build_id: str, image: dict[str, Any]) -> set[str]:
    recipe = ec2_api.tags_of(image).get(RECIPE)
    record = env.catalog.get(recipe, build_id) if recipe and env.catalog_table else None
    if record and record.get("status") == AVAILABLE:
        return set((record.get("images") or {}).values()) | {record.get("image_id", "")}
    return set()


def finish(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    build = state["build"]
    image_id = state.get("image", {}).get("image_id")
    done = cleanup_build(env, build["build_id"], keep_image=image_id,
                         regions=build.get("regions", []))
    messaging.send_cleanup(env.client("sqs"), env.cleanup_queue_url,
                           {"recipe": build["recipe"], "build_id": build["build_id"],
                            "status": "AVAILABLE", "keep_image": image_id,
                            "regions": build.get("regions", [])})
    return {"status": "AVAILABLE", "image_id": image_id, **done}


def failure_reason(error: dict[str, Any] | None) -> str:
    """A readable reason from Step Functions' {Error, Cause} (Cause is Lambda's JSON)."""
    if not error:
        return "unknown failure"
    name, cause = error.get("Error", "Error"), error.get("Cause") or ""
    try:
        parsed = json.loads(cause)
        message = parsed.get("errorMessage") or parsed.get("Cause") or cause
        name = parsed.get("errorType") or name
    except (ValueError, AttributeError):
        message = cause
    if name == "States.Timeout":
        return "timed out: the builder did not stop within build.timeout_minutes"
    return f"{name}: {message}" if message else str(name)


def record_failure(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    build = state.get("build") or {}
    reason = failure_reason(state.get("error"))
    if not build.get("build_id"):
        return {"status": "FAILED", "reason": reason}
    record = env.catalog.get(build["recipe"], build["build_id"]) or {}
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
    done = cleanup_build(env, build["build_id"], keep_image=None,
                         regions=build.get("regions", []))
    env.catalog.mark_failed(build["recipe"], build["build_id"], reason=reason,
                            console_tail=(tail or "")[-4000:] or None)
    summary = {"status": "FAILED", "recipe": build["recipe"], "build_id": build["build_id"],
               "reason": reason}
    messaging.notify(env.client("sns"), env.topic_arn,
                     f"amiforge: {build['recipe']} build failed", summary)
    messaging.send_cleanup(env.client("sqs"), env.cleanup_queue_url,
                           {"recipe": build["recipe"], "build_id": build["build_id"],
                            "status": "FAILED", "keep_image": None,
                            "regions": build.get("regions", [])})
    return {**summary, **done}


def cleanup_messages(event: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """SQS consumer: re-run cleanup for each finished build; report failures per message.

    A message that fails (unreadable, no build id, or a cleanup that raises) is named in
    ``batchItemFailures``: SQS delivers it again, and after the queue's maxReceiveCount it
    lands in the dead-letter queue, while the rest of the batch is deleted as done.
    """
    failures = []
    for message in event.get("Records", []):
        try:
            body = json.loads(message["body"])
            build_id = body.get("build_id") if isinstance(body, dict) else None
            if not isinstance(build_id, str) or not build_id:
                raise ValueError("a cleanup message needs a build_id")
            done = cleanup_build(env, build_id, keep_image=body.get("keep_image"),
                                 regions=body.get("regions", []))
            if isinstance(done.get("stack_deleted"), str):  # retried by SQS, then the DLQ
                raise RuntimeError(f"build stack of {build_id}: {done['stack_deleted']}")
        except Exception as err:
            _log.warning("cleanup message %s failed (receive %s): %s: %s",
                         message.get("messageId"),
                         message.get("attributes", {}).get("ApproximateReceiveCount"),
                         type(err).__name__, err)
            failures.append({"itemIdentifier": message.get("messageId")})
    return {"batchItemFailures": failures}
