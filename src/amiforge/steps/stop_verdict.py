"""The verdict on a stopped builder, reached in the invocation its stop event starts.

Before, a stop cost three invocations before CreateImage: the instance-state function
(resume AwaitStop), Verify (read the console marker), CreateImage. Now the instance-state
function, once it has claimed the build's task token (:meth:`TaskClaims.claim <amiforge.aws.task_claims.TaskClaims.claim>`:
one resumer per token, so a duplicated event cannot create a second image), does the
happy path itself and hands AwaitStop its result::

    {state, source, verdict: "success", image: {image_id, name, polls}}

and the state machine's ``Verified?`` choice goes straight on to AwaitImage with
``$.image``. Only the path where everything is already decided is taken here:

* the builder is ``stopped`` and its console carries ``AMIFORGE-RESULT: success`` (a
  CloudFormation builder has its verdict already: CREATE_COMPLETE);
* anything else (no marker yet, a failure marker, a builder that ended otherwise)
  returns ``{}``: AwaitStop is resumed with the state alone and the Verify state judges
  it as before, with its ConsoleNotReady retries, AttemptFailed and Relaunch?.
* CreateImage failing here (throttled past botocore's retries, a taken name...) returns
  ``{verdict: "success", image_error}``: the CreateImage state then runs with its own
  Retry and Catch, and finds the image this call made if it did make one (it looks for
  the image tagged with the build id first).

The build's context (the ``build`` and ``launch`` parts of the execution state) is what
AwaitStop left on the record (``stop_context``), checked against its schema and against
the instance the event names before anything is created.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.core import events
from amiforge.core.records import BuildRecord
from amiforge.core.userdata import parse_console
from amiforge.errors import InvalidEvent
from amiforge.steps.env import StepEnv

log = logging.getLogger(__name__)


def stop_context(record: BuildRecord, instance_id: str) -> dict[str, Any] | None:
    """The {build, launch} AwaitStop stored for this builder, or None (none stored, or
    not this build's, not this instance's, or not the shape Verify takes)."""
    if not record.get("stop_context"):
        return None  # a tester's wait, or a record from before stop_context
    try:
        context = json.loads(record["stop_context"])
        events.check(context, events.VERIFY, "stop_context")
    except (ValueError, InvalidEvent) as err:
        log.warning("build %s: no usable stop_context (%s)", record.get("build_id"), err)
        return None
    if (context["build"]["build_id"] != record.get("build_id")
            or context["build"]["recipe"] != record.get("recipe")
            or context["launch"]["instance_id"] != instance_id):
        return None
    result: dict[str, Any] = context
    return result


def verdict_at_stop(env: StepEnv, context: dict[str, Any], state: str) -> dict[str, Any]:
    """What AwaitStop's output adds to ``{state, source}`` (see the module docstring)."""
    build, launch = context["build"], context["launch"]
    if state != "stopped":
        return {}
    if build.get("builder") != "cloudformation":
        instance_id = launch["instance_id"]
        verdict = parse_console(ec2_api.console_output(env.client("ec2"), instance_id))
        if verdict.outcome != "success":
            return {}
        # As Verify records it (add_attempt is idempotent per attempt number).
        env.catalog.add_attempt(build["recipe"], build["build_id"], {
            "attempt": int(launch["attempt"]), "instance_id": instance_id,
            "outcome": "succeeded", "reason": "AMIFORGE-RESULT: success"})
    # Imported here, not with the module: the recipe model and its parser are CreateImage's
    # (the stop check's every-minute tick and a tester's stop never need them).
    from amiforge.steps.image import create_image

    try:
        image = create_image({"build": build, "launch": launch}, env)
    except Exception as err:  # the CreateImage state retries and judges it
        log.warning("build %s: CreateImage at the stop event failed: %s: %s",
                    build["build_id"], type(err).__name__, err)
        return {"verdict": "success",
                "image_error": {"Error": type(err).__name__, "Cause": str(err)[:1000]}}
    return {"verdict": "success", "image": image}
