"""Step Verify: read the builder's console for the wrapper's result marker.

success  -> go on to CreateImage
failure  -> relaunch while attempts remain (the old builder is terminated), else BuildFailed
missing  -> ConsoleNotReady (transient: EC2 can publish console output late); the state
            machine retries, then fails the build saying the marker never appeared.
"""

from __future__ import annotations

from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.core.userdata import parse_console
from amiforge.errors import BuildFailed, TransientAwsError
from amiforge.steps.env import StepEnv


class ConsoleNotReady(TransientAwsError):
    """No result marker in the console output yet."""


def verify(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    build, launch = state["build"], state["launch"]
    ec2 = env.client("ec2")
    instance = ec2_api.describe_instance(ec2, launch["instance_id"])
    instance_state = (instance or {}).get("State", {}).get("Name", "terminated")
    verdict = parse_console(ec2_api.console_output(ec2, launch["instance_id"]))
    attempt, retries = int(launch["attempt"]), int(build.get("retries", 0))
    # Idempotent: a Verify re-run after it had already terminated a failed builder (it
    # crashed or timed out after TerminateInstances) finds it shutting down: relaunch.
    relaunching = (verdict.outcome == "failure" and attempt <= retries
                   and instance_state in {"shutting-down", "terminated"})
    if instance_state != "stopped" and not relaunching:
        reason = (f"builder {launch['instance_id']} is {instance_state}, not stopped: "
                  "an image needs the stopped disk (was InstanceInitiatedShutdownBehavior "
                  "changed, or the instance terminated?)")
        _record_attempt(env, build, verdict.tail, reason)
        raise BuildFailed(reason)
    if verdict.outcome == "success":
        return {"outcome": "success"}
    if verdict.outcome == "missing":
        raise ConsoleNotReady(f"no AMIFORGE-RESULT marker in the console of "
                              f"{launch['instance_id']} yet")
    reason = f"build script failed (exit {verdict.exit_code}) on attempt {attempt} of {retries + 1}"
    _record_attempt(env, build, verdict.tail, reason)
    if attempt <= retries:
        ec2_api.terminate(ec2, [launch["instance_id"]])
        return {"outcome": "retry", "reason": reason}
    raise BuildFailed(reason)


def _record_attempt(env: StepEnv, build: dict[str, Any], tail: str, reason: str) -> None:
    env.catalog.update(build["recipe"], build["build_id"], console_tail=tail[-4000:],
                       last_attempt_reason=reason)
