"""The end of every build: clean up what it started, on success and on failure.

``finish`` runs after a good build: the builder is terminated. ``record_failure`` runs on
every failure path: builders terminated, any image this build made deregistered with its
snapshots, the catalog record FAILED with the reason and the console tail. Both also send
a cleanup message (SABS's queue): the cleanup function re-checks later, so a crash here
still leaves nothing behind.
"""

from __future__ import annotations

import json
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import messaging
from amiforge.core.tags import BUILD_ID
from amiforge.core.userdata import parse_console
from amiforge.steps.env import StepEnv


def cleanup_build(env: StepEnv, build_id: str, *, keep_image: str | None) -> dict[str, Any]:
    """Terminate every builder of ``build_id``; deregister its images except ``keep_image``."""
    ec2 = env.client("ec2")
    instances = [i["InstanceId"] for i in ec2_api.instances_tagged(ec2, {BUILD_ID: build_id})]
    terminated = ec2_api.terminate(ec2, instances)
    removed: dict[str, list[str]] = {}
    for image in ec2_api.images_tagged(ec2, BUILD_ID, build_id):
        if image["ImageId"] != keep_image:
            removed[image["ImageId"]] = ec2_api.deregister_with_snapshots(ec2, image["ImageId"])
    return {"terminated": terminated, "deregistered": removed}


def finish(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    build = state["build"]
    image_id = state.get("image", {}).get("image_id")
    done = cleanup_build(env, build["build_id"], keep_image=image_id)
    messaging.send_cleanup(env.client("sqs"), env.cleanup_queue_url,
                           {"recipe": build["recipe"], "build_id": build["build_id"],
                            "status": "AVAILABLE", "keep_image": image_id})
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
    done = cleanup_build(env, build["build_id"], keep_image=None)
    env.catalog.mark_failed(build["recipe"], build["build_id"], reason=reason,
                            console_tail=(tail or "")[-4000:] or None)
    summary = {"status": "FAILED", "recipe": build["recipe"], "build_id": build["build_id"],
               "reason": reason}
    messaging.notify(env.client("sns"), env.topic_arn,
                     f"amiforge: {build['recipe']} build failed", summary)
    messaging.send_cleanup(env.client("sqs"), env.cleanup_queue_url,
                           {"recipe": build["recipe"], "build_id": build["build_id"],
                            "status": "FAILED", "keep_image": None})
    return {**summary, **done}


def cleanup_messages(event: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """SQS consumer: re-run cleanup for each finished build; report failures per message."""
    failures = []
    for message in event.get("Records", []):
        try:
            body = json.loads(message["body"])
            cleanup_build(env, body["build_id"], keep_image=body.get("keep_image"))
        except Exception:
            failures.append({"itemIdentifier": message.get("messageId")})
    return {"batchItemFailures": failures}
