"""Step AwaitApproval: hold an AVAILABLE image until a person approves or rejects it.

A recipe with ``release: {approval: manual}`` reaches the state machine's AwaitApproval
task (``lambda:invoke.waitForTaskToken``) once its image is available in the home
region, before anything is copied, shared or made ``latest``. :func:`request_approval`
parks the task token on the catalog record (``approval_token``), moves the record from
BUILDING to AWAITING_APPROVAL, terminates the stopped builder (through the deletion gate:
its image is made, and a wait of days should keep no instance or volume), and notifies SNS
with the image and the two commands that answer it. Then nothing runs: the execution waits on its token at no cost until

* ``amiforge approve BUILD_ID`` (:mod:`amiforge.ops.approval`): SendTaskSuccess, the
  release goes on (Distribute, Register: AVAILABLE, ``latest`` moves);
* ``amiforge reject BUILD_ID --reason TEXT``: SendTaskFailure with
  :data:`REJECTED_ERROR`, caught into RecordFailure (FAILED with the reason, the image and
  its snapshots removed through the deletion gate);
* the recipe's ``approval_timeout_hours`` pass: States.Timeout, the ApprovalTimedOut
  state, RecordFailure as for a rejection.

The token is kept apart from AwaitStop's ``task_token`` on purpose: the EC2 state-change
handler resumes whatever ``task_token`` a record holds when the build's (stopped)
builder changes state, and a builder terminated during the wait must never approve it.
``status`` and ``history`` never show either token (ops/views.py picks its fields).

Order: the record first, then the notification. A retried task (a new token) overwrites
the token, so the record always holds the one Step Functions is waiting on; a record
that is no longer BUILDING or AWAITING_APPROVAL (cancelled meanwhile) is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import messaging
from amiforge.aws.catalog import now_iso
from amiforge.core.deletion import InstanceFacts, Owner, decide_instance
from amiforge.core.statuses import BuildStatus
from amiforge.core.tags import BUILD_ID, RECIPE
from amiforge.errors import OperationFailed
from amiforge.steps.env import StepEnv

# The error `amiforge reject` sends (SendTaskFailure): core/failures.py turns it into the
# record's reason, "rejected: <the reason given>".
REJECTED_ERROR = "ApprovalRejected"
TOKEN_FIELD = "approval_token"


def approve_command(build_id: str) -> str:
    return f"amiforge approve {build_id}"


def reject_command(build_id: str) -> str:
    return f"amiforge reject {build_id} --reason TEXT"


def request_approval(event: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """Input: {token, build, image: {image_id}, timeout_seconds}."""
    build, image_id = event["build"], event["image"]["image_id"]
    recipe, build_id = build["recipe"], build["build_id"]
    deadline = (datetime.now(UTC) + timedelta(seconds=int(event["timeout_seconds"]))
                ).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    waiting = env.catalog.update(
        recipe, build_id, only_if_status=(BuildStatus.BUILDING, BuildStatus.AWAITING_APPROVAL),
        status=BuildStatus.AWAITING_APPROVAL, image_id=image_id,
        approval_requested_at=now_iso(), approval_deadline=deadline,
        **{TOKEN_FIELD: event["token"]})
    record = env.catalog.get(recipe, build_id)
    if not waiting:
        status = record.get("status") if record is not None else "not recorded"
        raise OperationFailed(f"build {build_id} is {status}, not BUILDING: it cannot wait "
                              "for approval")
    retired = retire_builders(env, recipe, build_id)
    messaging.notify(env.client("sns"), env.topic_arn,
                     f"amiforge: {recipe} image {image_id} awaits approval", {
                         "status": BuildStatus.AWAITING_APPROVAL, "recipe": recipe,
                         "build_id": build_id, "image_id": image_id,
                         "image_name": record.get("image_name") if record else None, "region": env.region,
                         "approval_deadline": deadline,
                         "approve": approve_command(build_id),
                         "reject": reject_command(build_id),
                         "message": (f"Image {image_id} of recipe {recipe} (build {build_id}) "
                                     "is built and waits for approval before it is copied, "
                                     "shared and made latest. Approve: "
                                     f"`{approve_command(build_id)}`. Reject: "
                                     f"`{reject_command(build_id)}`. Without an answer by "
                                     f"{deadline} the build fails and the image is removed.")})
    return {"status": BuildStatus.AWAITING_APPROVAL, "image_id": image_id,
            "approval_deadline": deadline, "terminated": retired}


def retire_builders(env: StepEnv, recipe: str, build_id: str) -> list[str]:
    """Terminate the build's stopped builder(s) before the wait, through the deletion
    gate (a builder of a build AWAITING_APPROVAL: its image is made), so that a wait of
    days keeps no instance and no volume. The record says AWAITING_APPROVAL first."""
    owner = Owner(recipe, build_id, stack=env.stack_name or None)
    instances = ec2_api.instances_tagged(env.client("ec2"), {BUILD_ID: build_id,
                                                             RECIPE: recipe})
    approved = [i["InstanceId"] for i in instances if decide_instance(InstanceFacts(
        i["InstanceId"], ec2_api.tags_of(i), owner, BuildStatus.AWAITING_APPROVAL),
        f"build {build_id} awaits approval: its image is made").delete]
    return ec2_api.terminate(env.client("ec2"), approved)
