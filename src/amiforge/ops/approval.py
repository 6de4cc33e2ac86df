"""``amiforge approve BUILD_ID`` / ``reject BUILD_ID --reason TEXT``: answer the approval
gate (``release.approval: manual``, :mod:`amiforge.steps.approval`), and what
``amiforge status`` lists as awaiting it.

**Approve**, in this order:

1. The record from AWAITING_APPROVAL back to BUILDING, with ``approved_at``/``approved_by``
   (conditional: of two approvers, or an approver racing a reject or a cancel, one wins;
   the token stays until the answer is sent).
2. SendTaskSuccess with the stored token: the release goes on; Register's write into
   AVAILABLE is conditional on BUILDING, which step 1 made true before the execution could
   get there. Had the wait just timed out (the token is gone), the failure path records
   FAILED from BUILDING as for any failure, and the approver is told (exit 1).

A second ``approve`` of an approved build finds it BUILDING or AVAILABLE with
``approved_at``: it says so (exit 0) and, while the record still holds the token (the
first approver died between the two steps), sends it again, which is harmless.

**Reject**: ``rejected_at``/``rejected_by``/``reject_reason`` on the record
(conditional on AWAITING_APPROVAL), then SendTaskFailure with ``ApprovalRejected`` and
the reason: the state machine's catch takes the build to RecordFailure, which records
FAILED with "rejected: <reason>" and removes the image and its snapshots through the
deletion gate. The record shows AWAITING_APPROVAL until RecordFailure has run (seconds);
the answer says what was sent.

Anything else (an unknown build, one that is not AWAITING_APPROVAL) is refused with exit
2 naming the build, its status and what to do; nothing is touched.
"""

from __future__ import annotations

import getpass
import os
import time
from typing import Any

from amiforge.aws import stepfunctions as sfn_api
from amiforge.aws.catalog import now_iso
from amiforge.aws.in_flight import InFlight
from amiforge.core.records import BuildRecord
from amiforge.core.rules import CONTROL
from amiforge.core.statuses import BuildStatus
from amiforge.errors import InvalidInput, OperationFailed
from amiforge.ops.lookups import find_build
from amiforge.steps.approval import REJECTED_ERROR, TOKEN_FIELD, approve_command, reject_command
from amiforge.steps.env import StepEnv

REASON_MAX = 1000
# How long `reject` waits for the failure path to record FAILED before it answers.
RECORD_WAIT_SECONDS = 30


def who() -> str:
    """Who answers, as recorded on the build: $AMIFORGE_USER, else the login name."""
    try:
        return os.environ.get("AMIFORGE_USER") or getpass.getuser() or "unknown"
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "unknown"


AWAITING_HINT = "`amiforge status` lists the builds awaiting approval"

_WHY_NOT: dict[str, str] = {
    "STARTING": "it has not reached the approval gate yet",
    "BUILDING": "it has not reached the approval gate yet (or its recipe has no "
                "release.approval: manual)",
    "AVAILABLE": "it is already released",
    "FAILED": "it failed",
    "CANCELLED": "it was cancelled",
}


def _refuse(record: BuildRecord, verb: str) -> InvalidInput:
    status = record.get("status")
    what = _WHY_NOT.get(str(status), "it is over")
    return InvalidInput(f"build {record['build_id']} is {status}, not AWAITING_APPROVAL: "
                        f"nothing to {verb} ({what})",
                        hint="`amiforge status` lists the builds awaiting approval")


def _answer(record: BuildRecord, decision: str, message: str, *, status: str,
            reason: str | None = None, already: bool = False) -> dict[str, Any]:
    return {"recipe": record["recipe"], "build_id": record["build_id"],
            "image_id": record.get("image_id"), "decision": decision, "status": status,
            "reason": reason, "already": already, "message": message}


def approve(env: StepEnv, build_id: str) -> dict[str, Any]:
    record = find_build(env, build_id, hint=AWAITING_HINT)
    recipe = record["recipe"]
    token = record.get("approval_token")
    if record.get("status") == BuildStatus.AWAITING_APPROVAL and token:
        by = who()
        if env.catalog.update(recipe, build_id, only_if_status=BuildStatus.AWAITING_APPROVAL,
                              status=BuildStatus.BUILDING, approved_at=now_iso(),
                              approved_by=by):
            if not sfn_api.resume(env.client("stepfunctions"), token,
                                  {"approved": True, "approved_by": by}):
                raise OperationFailed(
                    f"build {build_id}'s approval wait had already ended (it timed out or "
                    "was stopped): the build fails and its image is removed",
                    hint=f"see `amiforge history {recipe}`; a new build needs approval again")
            env.catalog.update(recipe, build_id, remove=(TOKEN_FIELD,))
            return _answer(record, "approved",
                           f"approved build {build_id} (image {record.get('image_id')}): "
                           "the release goes on (copies, sharing, latest)",
                           status=BuildStatus.BUILDING)
        record = env.catalog.get(recipe, build_id) or record  # answered meanwhile
    if record.get("approved_at") and record.get("status") in (BuildStatus.BUILDING,
                                                             BuildStatus.AVAILABLE):
        token = record.get("approval_token")
        if token and record.get("status") == BuildStatus.BUILDING:
            # The first approver stopped between its two writes: send the answer again
            # (an answered token is refused by Step Functions and changes nothing).
            sfn_api.resume(env.client("stepfunctions"), token, {"approved": True})
        return _answer(record, "approved",
                       f"build {build_id} was already approved at {record.get('approved_at')}"
                       f" by {record.get('approved_by')}; it is {record.get('status')}",
                       status=str(record.get("status")), already=True)
    raise _refuse(record, "approve")


def check_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise InvalidInput("reject needs --reason TEXT: say why, it is recorded on the build "
                           "and sent with the notification")
    if len(reason) > REASON_MAX:
        raise InvalidInput(f"--reason is {len(reason)} characters long; at most "
                           f"{REASON_MAX} are accepted")
    found = CONTROL.search(reason)
    if found:
        raise InvalidInput(f"--reason contains the control character {found.group()!r}; "
                           "write it on one line of plain text")
    return reason


def reject(env: StepEnv, build_id: str, reason: str) -> dict[str, Any]:
    reason = check_reason(reason)
    record = find_build(env, build_id, hint=AWAITING_HINT)
    recipe = record["recipe"]
    token = record.get("approval_token")
    if record.get("status") != BuildStatus.AWAITING_APPROVAL or not token:
        raise _refuse(record, "reject")
    by = who()
    if not env.catalog.update(recipe, build_id, only_if_status=BuildStatus.AWAITING_APPROVAL,
                              rejected_at=now_iso(), rejected_by=by, reject_reason=reason):
        raise _refuse(env.catalog.get(recipe, build_id) or record, "reject")
    if not sfn_api.fail_task(env.client("stepfunctions"), token, error=REJECTED_ERROR,
                             cause=reason):
        raise OperationFailed(f"build {build_id}'s approval wait had already ended (it timed "
                              "out or was stopped)",
                              hint=f"see `amiforge history {recipe}`")
    # RecordFailure runs within seconds: answer with the status it records, if it has.
    status = str(record.get("status"))
    deadline = time.monotonic() + RECORD_WAIT_SECONDS
    while time.monotonic() < deadline:
        status = str((env.catalog.get(recipe, build_id) or record).get("status"))
        if status != BuildStatus.AWAITING_APPROVAL:
            break
        time.sleep(1)
    done = ("it is recorded FAILED" if status == BuildStatus.FAILED
            else f"it is {status} until the failure path records it FAILED")
    return _answer(record, "rejected",
                   f"rejected build {build_id}: {done}; its image {record.get('image_id')} "
                   "and snapshots are removed through the deletion gate",
                   status=status, reason=reason)


def awaiting(env: StepEnv, recipes: list[str]) -> list[dict[str, Any]]:
    """Every build of ``recipes`` awaiting approval, with the commands that answer it."""
    rows = []
    for recipe in recipes:
        for record in InFlight(env.catalog).awaiting_approval(recipe):
            build_id = record["build_id"]
            rows.append({"recipe": recipe, "build_id": build_id,
                         "image_id": record.get("image_id"),
                         "since": record.get("approval_requested_at"),
                         "deadline": record.get("approval_deadline"),
                         "approve": approve_command(build_id),
                         "reject": reject_command(build_id)})
    return rows
