"""Steps Verify and AttemptFailed: judge one launch of the builder, relaunch while
``build.retries`` remain.

A launch (an *attempt*) fails in four ways, and each counts against ``retries`` alike:

* the console carries ``AMIFORGE-RESULT: failure exit=N`` (Verify);
* the builder ended other than stopped: terminated, or it never reached running (Verify);
* it never stopped within ``build.timeout_minutes``: AwaitStop's ``States.Timeout``;
* it stopped without a marker: Verify's ``ConsoleNotReady`` retries ran out (EC2 can
  publish console output late, so a missing marker is first retried as transient).

The last two are errors the state machine catches into the AttemptFailed state, which
calls this same function with the caught error as ``failed_attempt`` (one function: the
judgement and its permissions are Verify's). For a missing marker it first reads the
console once more: a marker that arrived after the last retry still counts. Every failed attempt is handled the same
way: its builder is terminated, the attempt is appended to the record's ``attempts``
(number, instance, reason, console tail excerpt), and the verdict is ``retry`` (the
Relaunch? choice goes back to Launch with attempt + 1) or, with no attempt left,
BuildFailed, which RecordFailure turns into FAILED. A CloudFormation build launches once.
"""

from __future__ import annotations

from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.core.failures import failure_reason
from amiforge.core.userdata import parse_console
from amiforge.errors import BuildFailed, ConsoleNotReady
from amiforge.steps.env import StepEnv

# Console excerpt kept per attempt; the record's console_tail keeps the last 4,000.
ATTEMPT_TAIL_CHARS = 1500



def verify(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    if "failed_attempt" in state:
        return attempt_failed(state, env)
    build, launch = state["build"], state["launch"]
    ec2 = env.client("ec2")
    instance_id = launch["instance_id"]
    instance = ec2_api.describe_instance(ec2, instance_id)
    instance_state = (instance or {}).get("State", {}).get("Name", "terminated")
    verdict = parse_console(ec2_api.console_output(ec2, instance_id))
    if verdict.outcome == "failure":
        # Also a Verify re-run that had already terminated this builder: same verdict.
        return _failed(env, build, launch, f"build script failed (exit {verdict.exit_code})",
                       verdict.tail)
    if instance_state != "stopped":
        return _failed(env, build, launch,
                       f"builder {instance_id} is {instance_state}, not stopped: it ended "
                       "before stopping by itself (it never reached running, or it was "
                       "terminated; an image needs the stopped disk)", verdict.tail)
    if verdict.outcome == "missing":
        raise ConsoleNotReady(f"no AMIFORGE-RESULT marker in the console of {instance_id} yet")
    env.catalog.add_attempt(build["recipe"], build["build_id"], {
        "attempt": int(launch["attempt"]), "instance_id": instance_id,
        "outcome": "succeeded", "reason": "AMIFORGE-RESULT: success"})
    return {"outcome": "success"}


def attempt_failed(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """The AttemptFailed state: ``failed_attempt`` is the {Error, Cause} caught from
    AwaitStop (States.Timeout) or Verify (ConsoleNotReady after its retries)."""
    build, launch, error = state["build"], state["launch"], state["failed_attempt"] or {}
    instance_id = launch.get("instance_id", "?")
    if error.get("Error") == "ConsoleNotReady":
        # One last look: a marker that arrived after Verify's last retry still counts.
        try:
            return verify({"build": build, "launch": launch}, env)
        except ConsoleNotReady:
            pass
    if error.get("Error") == "States.Timeout":
        reason = (f"timed out: builder {instance_id} did not stop within "
                  "build.timeout_minutes")
    elif error.get("Error") == "ConsoleNotReady":
        reason = (f"no AMIFORGE-RESULT marker: builder {instance_id} stopped but its "
                  "console never showed the wrapper's result (did the script power off "
                  "the instance itself?)")
    else:
        reason = failure_reason(error)
    try:
        tail = parse_console(ec2_api.console_output(env.client("ec2"), instance_id)).tail
    except Exception:  # the console is a nicety; the attempt is judged regardless
        tail = ""
    return _failed(env, build, launch, reason, tail)


def _failed(env: StepEnv, build: dict[str, Any], launch: dict[str, Any], reason: str,
            tail: str) -> dict[str, Any]:
    attempt = int(launch.get("attempt", 1))
    retries = 0 if build.get("builder") == "cloudformation" else int(build.get("retries", 0))
    instance_id = launch.get("instance_id")
    env.catalog.add_attempt(build["recipe"], build["build_id"], {
        "attempt": attempt, "instance_id": instance_id, "outcome": "failed",
        "reason": reason, "console_tail": tail[-ATTEMPT_TAIL_CHARS:] or None})
    summary = f"{reason} on attempt {attempt} of {retries + 1}"
    env.catalog.update(build["recipe"], build["build_id"], console_tail=tail[-4000:] or None,
                       last_attempt_reason=summary)
    if attempt <= retries:
        # The failed builder goes before the relaunch; on the last attempt RecordFailure
        # removes every builder of the build (with its image, if any) itself.
        if instance_id:
            ec2_api.terminate(env.client("ec2"), [instance_id])
        return {"outcome": "retry", "reason": summary}
    raise BuildFailed(summary)
