"""Steps around "the builder stops by itself": park the task token, resume on the event.

The state machine's AwaitStop task (``lambda:invoke.waitForTaskToken``) calls
:func:`register_wait`, which stores the token on the catalog record, with the build's
state (``stop_context``). When EC2 reports the instance stopped, the EventBridge rule
calls :func:`on_instance_state`, which finds the record by the instance's tags (read from
EC2, not from the event, whose state is checked against EC2's too), claims the token,
reaches the verdict and creates the image in the same invocation
(:mod:`amiforge.steps.stop_verdict`), and resumes the execution with them.

Every resumer (the event, a duplicate of it, the stop check, register_wait's own look)
first claims the token on the record (:meth:`TaskClaims.claim <amiforge.aws.task_claims.TaskClaims.claim>`): one acts, and
it removes the token once answered, so a repeated or late event finds nothing to do and
never makes a second image. The rule delivers ``stopped`` only: the ``terminated`` event
Finish causes needs no work, and a builder terminated before it stopped is found by the
stop check.

Two races are closed here: the stop event can arrive before the token is stored (so
register_wait checks the instance state itself after storing it), and both paths may
want to resume the same token (the claim lets one of them). A stop event that is lost entirely
is caught by the stop check: register_wait also notes the wait in the catalog's
``#waiting`` partition, and the same function, run on a schedule (``{"check":
"waiting"}``), resumes every waiting build whose builder already stopped
(:mod:`amiforge.steps.stop_check`). The recipe's timeout is left for builders that
really never stop.
"""

from __future__ import annotations

import json
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws.waits import Waiting, WaitingList
from amiforge.core.tags import BUILD_ID, RECIPE
from amiforge.steps.env import StepEnv
from amiforge.steps.stop_check import DONE_STATES, check_waiting, resume_claimed
from amiforge.steps.stop_verdict import stop_context, verdict_at_stop


def register_wait(event: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """Input: {token, recipe, build_id, instance_id, role?, build?, launch?}. ``role:
    tester`` (the test phase's AwaitTest) stores the instance as ``tester_instance_id``:
    the record's ``instance_id`` keeps naming the builder. ``build`` and ``launch`` (the
    builder's AwaitStop) are kept for the stop event's verdict."""
    field = "tester_instance_id" if event.get("role") == "tester" else "instance_id"
    context = ({"stop_context": json.dumps({"build": event["build"], "launch": event["launch"]})}
               if field == "instance_id" and "build" in event and "launch" in event else {})
    env.catalog.update(event["recipe"], event["build_id"], task_token=event["token"],
                       remove=("task_token_claimed_at",), **{field: event["instance_id"]},
                       **context)
    waits = WaitingList(env.client("dynamodb"), env.catalog_table)
    wait = Waiting(recipe=event["recipe"], build_id=event["build_id"],
                   instance_id=event["instance_id"], token=event["token"], since="")
    waits.add(recipe=wait.recipe, build_id=wait.build_id, instance_id=wait.instance_id,
              token=wait.token)
    instance = ec2_api.describe_instance(env.client("ec2"), event["instance_id"])
    state = (instance or {}).get("State", {}).get("Name", "terminated")
    resumed = False
    if state in DONE_STATES:
        # Stopped already (a short script, a slow start of this task): the verdict is
        # reached here, as the stop event's invocation would have.
        builder = ({"build": event["build"], "launch": event["launch"]}
                   if context else None)

        def output() -> dict[str, Any]:
            verdict = verdict_at_stop(env, builder, state) if builder else {}
            return {"state": state, "source": "poll", **verdict}

        resumed = resume_claimed(env, waits, wait, output) is True
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
    # EC2's word, not the event's: a forged or out-of-order event changes nothing.
    state = (instance or {}).get("State", {}).get("Name", "terminated")
    if state not in DONE_STATES:
        return {"ignored": f"not a stop: EC2 says {instance_id} is {state}"}
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
    wait = Waiting(recipe=tags[RECIPE], build_id=tags[BUILD_ID], instance_id=instance_id,
                   token=record["task_token"], since="")
    context = (None if record.get("tester_instance_id")
               else stop_context(record, instance_id))

    def output() -> dict[str, Any]:
        # Only once the token is ours: the image is made by one invocation.
        verdict = verdict_at_stop(env, context, state) if context else {}
        return {"state": state, "source": "event", **verdict}

    waits = WaitingList(env.client("dynamodb"), env.catalog_table)
    resumed = resume_claimed(env, waits, wait, output)
    if resumed is None:
        return {"build_id": tags[BUILD_ID], "resumed": False, "ignored": "claimed already"}
    return {"build_id": tags[BUILD_ID], "resumed": resumed}
