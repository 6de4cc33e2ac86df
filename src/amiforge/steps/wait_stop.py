"""Steps around "the builder stops by itself": park the task token, resume on the event.

The state machine's AwaitStop task (``lambda:invoke.waitForTaskToken``) calls
:func:`register_wait`, which stores the token on the catalog record. When EC2 reports the
instance stopped, the EventBridge rule calls :func:`on_instance_state`, which finds the
record by the instance's tags and resumes the execution.

Two races are closed here: the stop event can arrive before the token is stored (so
register_wait checks the instance state itself after storing it), and both paths may
resume the same token (the second answer is ignored). A stop event that is lost entirely
is caught by the stop check: register_wait also notes the wait in the catalog's
``#waiting`` partition, and the same function, run on a schedule (``{"check":
"waiting"}``), resumes every waiting build whose builder already stopped
(:mod:`amiforge.steps.stop_check`). The recipe's timeout is left for builders that
really never stop.
"""

from __future__ import annotations

from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import stepfunctions as sfn_api
from amiforge.aws.waits import WaitingList
from amiforge.core.tags import BUILD_ID, RECIPE
from amiforge.steps.env import StepEnv
from amiforge.steps.stop_check import check_waiting

DONE_STATES = frozenset({"stopped", "terminated", "shutting-down"})


def register_wait(event: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """Input: {token, recipe, build_id, instance_id, role?}. ``role: tester`` (the test
    phase's AwaitTest) stores the instance as ``tester_instance_id``: the record's
    ``instance_id`` keeps naming the builder."""
    field = "tester_instance_id" if event.get("role") == "tester" else "instance_id"
    env.catalog.update(event["recipe"], event["build_id"], task_token=event["token"],
                       **{field: event["instance_id"]})
    waits = WaitingList(env.client("dynamodb"), env.catalog_table)
    waits.add(recipe=event["recipe"], build_id=event["build_id"],
              instance_id=event["instance_id"], token=event["token"])
    instance = ec2_api.describe_instance(env.client("ec2"), event["instance_id"])
    state = (instance or {}).get("State", {}).get("Name", "terminated")
    resumed = False
    if state in DONE_STATES:
        resumed = sfn_api.resume(env.client("stepfunctions"), event["token"],
                                 {"state": state, "source": "poll"})
        waits.remove(event["build_id"], event["instance_id"])
    return {"state": state, "resumed": resumed}


def on_instance_state(event: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """EventBridge "EC2 Instance State-change Notification" for any instance, or the
    stop check's schedule (input ``{"check": "waiting"}``)."""
    if event.get("check") == "waiting":
        return check_waiting(env)
    detail = event.get("detail", {})
    instance_id, state = detail.get("instance-id"), detail.get("state")
    if not instance_id or state not in DONE_STATES:
        return {"ignored": "not a stop"}
    instance = ec2_api.describe_instance(env.client("ec2"), instance_id)
    tags = ec2_api.tags_of(instance or {})
    if BUILD_ID not in tags or RECIPE not in tags:
        return {"ignored": "not an amiforge builder"}
    record = env.catalog.get(tags[RECIPE], tags[BUILD_ID])
    # Once the build has a tester, only the tester's stop may resume it: a late or repeated
    # event of the (still stopped) builder must not end the test phase's wait.
    if not record or not record.get("task_token") or instance_id != (
            record.get("tester_instance_id") or record.get("instance_id")):
        # Not waiting yet: register_wait will see the state itself.
        return {"ignored": "no waiting task"}
    resumed = sfn_api.resume(env.client("stepfunctions"), record["task_token"],
                             {"state": state, "source": "event"})
    if resumed:  # a stale token (a retried AwaitStop made a new one) keeps the marker
        WaitingList(env.client("dynamodb"), env.catalog_table).remove(tags[BUILD_ID],
                                                                      instance_id)
    return {"build_id": tags[BUILD_ID], "resumed": resumed}
