"""Cleanup of a finished build, and the cleanup queue's consumer.

:func:`cleanup_build` is the one cleanup of a build that is over: its builders terminated,
its images (and their snapshots) removed where the deletion gate approves, its build
stack deleted. Finish, RecordFailure, ``amiforge cancel`` and ``destroy --force`` call it
directly; :func:`cleanup_messages` runs it again for each message of the cleanup queue
(SABS's queue: a second look, so a crash on the way leaves nothing behind).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import messaging
from amiforge.core import cleanup_message
from amiforge.core.deletion import (
    OVER_STATUSES,
    InstanceFacts,
    Owner,
    decide_instance,
    valid_build_id,
)
from amiforge.core.tags import BUILD_ID, RECIPE
from amiforge.errors import AmiforgeError, InvalidInput
from amiforge.steps.build_stack import delete_build_stack
from amiforge.steps.env import StepEnv
from amiforge.steps.gate import Gate, describe_failure

log = logging.getLogger(__name__)


def cleanup_build(env: StepEnv, recipe: str, build_id: str, *, keep_image: str | None,
                  regions: Iterable[str] = (), reason: str | None = None) -> dict[str, Any]:
    """Terminate the builders of ``build_id`` of ``recipe`` once the build is over; ask
    the deletion gate about each of its images in the home region and ``regions`` (and
    the snapshots behind them) and remove what it approves. ``keep_image`` is kept
    whatever the gate says.

    Regions one at a time: a region that fails (unreachable, access denied) is reported
    in ``errors`` and the others are still cleaned. Raises InvalidInput for a recipe or
    build id that is not of the exact formats: nothing is ever filtered by a pattern.
    """
    if not valid_build_id(build_id, recipe):
        raise InvalidInput(f"cleanup: build id {build_id!r} is not a build of recipe "
                           f"{recipe!r}", hint="pass an exact build id")
    record = env.catalog.get(recipe, build_id) if env.catalog_table else None
    status = record.get("status") if record is not None else None
    reason = reason or f"build {build_id} is {status}"
    owner = Owner(recipe, build_id, stack=env.stack_name or None)
    all_regions = list(dict.fromkeys([env.region, *regions]))
    errors: dict[str, str] = {}
    terminated: list[str] = []
    if status in OVER_STATUSES:  # never a live build's builder, whatever a message says
        try:
            instances = ec2_api.instances_tagged(env.client("ec2"),
                                                 {BUILD_ID: build_id, RECIPE: recipe})
            approved = [i["InstanceId"] for i in instances if decide_instance(InstanceFacts(
                i["InstanceId"], ec2_api.tags_of(i), owner, status), reason).delete]
            terminated = ec2_api.terminate(env.client("ec2"), approved)
        except Exception as err:  # reported; the images are still looked at
            errors[f"{env.region} builders"] = describe_failure(err)
    gate = Gate(env)
    rows: list[dict[str, Any]] = []
    for region in all_regions:
        try:
            images = [i for i in ec2_api.images_tagged(env.client("ec2", region), BUILD_ID,
                                                       build_id)
                      if i["ImageId"] != keep_image]
            rows += gate.remove_images(region, images, owner, record, reason)
        except Exception as err:  # this region's work fails; the others go on
            log.warning("cleanup of %s in %s failed: %s", build_id, region, err)
            errors[region] = describe_failure(err)
    # Last, and on its own: a CloudFormation-built build has a stack, and a failure to
    # delete it (throttled, a missing permission) must not stop the EC2 cleanup above.
    # The caller decides: finish reports it; the cleanup queue retries the message.
    stack_deleted: bool | str = False
    if status in OVER_STATUSES:
        try:
            stack_deleted = delete_build_stack(env, build_id)
        except AmiforgeError as err:
            log.error("could not delete the build stack of %s: %s", build_id, err)
            stack_deleted = f"error: {err}"
    deregistered = {r["resource"]: r["region"] for r in rows
                    if r["kind"] == "image" and r["action"] == "deregister"}
    kept = {r["resource"]: r["reason"] for r in rows if r["action"] == "keep"}
    return {"terminated": terminated, "deregistered": deregistered, "kept": kept,
            "stack_deleted": stack_deleted, "errors": errors}


def cleanup_messages(event: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """SQS consumer: re-run cleanup for each finished build; report failures per message.

    Messages are untrusted (``core/cleanup_message.py``). One that breaks the schema, or
    names a build this stack's catalog does not hold, deletes nothing: it is sent to the
    dead-letter queue at once with the reason (message attribute ``reason``) and acknowledged,
    never retried. A good message whose cleanup fails (a region, a build stack) is named
    in ``batchItemFailures``: SQS delivers it again, and after the queue's
    maxReceiveCount it lands in the dead-letter queue too, while the rest of the batch is
    deleted as done.
    """
    failures = []
    for message in event.get("Records", []):
        try:
            try:
                parsed = cleanup_message.parse(message.get("body"))
            except cleanup_message.BadMessage as bad:
                _refuse(env, message, str(bad))
                continue
            if env.catalog_table and env.catalog.get(parsed.recipe, parsed.build_id) is None:
                _refuse(env, message, f"build {parsed.build_id} of {parsed.recipe} is not in "
                                      "this stack's catalog")
                continue
            done = cleanup_build(env, parsed.recipe, parsed.build_id,
                                 keep_image=parsed.keep_image, regions=parsed.regions)
            if isinstance(done.get("stack_deleted"), str):  # retried by SQS, then the DLQ
                raise RuntimeError(f"build stack of {parsed.build_id}: {done['stack_deleted']}")
            if done["errors"]:
                raise RuntimeError(f"cleanup of {parsed.build_id}: {done['errors']}")
        except Exception as err:
            log.warning("cleanup message %s failed (receive %s): %s: %s",
                        message.get("messageId"),
                        message.get("attributes", {}).get("ApproximateReceiveCount"),
                        type(err).__name__, err)
            failures.append({"itemIdentifier": message.get("messageId")})
    return {"batchItemFailures": failures}


def _refuse(env: StepEnv, message: dict[str, Any], reason: str) -> None:
    """Dead-letter a message that must not be acted on. Without a dead-letter queue
    configured, raise: SQS redelivers it until its redrive policy moves it there."""
    log.warning("cleanup message %s refused: %s", message.get("messageId"), reason)
    if not env.cleanup_dead_letter_url:
        raise ValueError(f"refused: {reason}")
    messaging.dead_letter(env.client("sqs"), env.cleanup_dead_letter_url,
                          str(message.get("body")), reason=reason,
                          message_id=str(message.get("messageId")))
