"""The test phase: run the recipe's ``test:`` script on an instance of the new image.

It sits between AwaitImage (the image is AVAILABLE in the home region) and Distribute,
so a bad image is never copied, shared, registered or named by ``latest``. The states
(deploy/state_machine.yaml) reuse the builder's machinery:

* **LaunchTester** (:func:`launch_tester`): a recipe without ``test:`` answers
  ``{"enabled": false}`` and the Tested? choice goes straight on. Otherwise it launches a
  *tester* from the image exactly as Launch launches a builder (aws/ec2.run_builder:
  IMDSv2 required, encrypted EBS, no key pair, the stack's no-inbound group, stop on
  power-off, tags at creation: the build's tags plus ``amiforge:role=tester``, through
  the launch budget), with the test script in the same wrapper as the build script.
  Idempotent: a retried LaunchTester finds the tester it made by its tags.
* **AwaitTest**: the AwaitStop function with ``role: tester`` (a task token resumed by
  the EC2 stopped event, or the stop check), timing out after ``test.timeout_minutes``.
* **VerifyTest** (:func:`verify_test`): reads the marker from the tester's console.
  A missing marker raises ConsoleNotReady, retried like Verify's. Either way the tester
  is terminated (through the deletion gate's :func:`~amiforge.core.deletion.decide_tester`)
  and the outcome recorded on the catalog record as ``test`` (tester instance id,
  outcome, duration, reason).
* **TestNotPassed**: the same function given the error AwaitTest (States.Timeout) or
  VerifyTest (ConsoleNotReady after its retries) raised, as ``failed_test``.

A test that did not pass raises BuildFailed("test failed: ..."), which RecordFailure
turns into FAILED with that reason and the tester's console tail (stored here, masked by
core/userdata.console_tail): RecordFailure's cleanup then removes the image and its
snapshots through the deletion gate (the tester, terminated first, no longer holds the
image) and ``latest`` never moved. A test is judged once: it is not retried by
``build.retries`` (a flaky test is a failing test).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws.pacing import Pacer
from amiforge.core.deletion import InstanceFacts, Owner, decide_tester
from amiforge.core.failures import failure_reason
from amiforge.core.tags import BUILD_ID, ROLE, TESTER, tester_tags
from amiforge.core.userdata import parse_console
from amiforge.errors import BuildFailed, ConsoleNotReady
from amiforge.steps.build_inputs import common_tags, load_recipe
from amiforge.steps.env import StepEnv
from amiforge.steps.launch import builder_groups, builder_subnet

TAIL_CHARS = 4000
_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"


def launch_tester(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """Input: {build, image}. Output: {enabled, instance_id?, timeout_seconds?, ...}."""
    build, image = state["build"], state["image"]
    recipe = load_recipe(env, build)
    if recipe.test is None:
        return {"enabled": False}
    timeout_seconds = max(1, recipe.test.timeout_minutes * env.seconds_per_minute)
    ec2 = env.client("ec2")
    existing = ec2_api.instances_tagged(ec2, {BUILD_ID: build["build_id"], ROLE: TESTER})
    if existing:  # a retried LaunchTester: never a second tester
        instance = existing[0]
        launched = instance.get("LaunchTime")
        started = (launched.astimezone(UTC).strftime(_STAMP) if isinstance(launched, datetime)
                   else _now())
        return {"enabled": True, "instance_id": instance["InstanceId"],
                "instance_type": instance["InstanceType"], "timeout_seconds": timeout_seconds,
                "started_at": started}
    pacer = Pacer(env.client("dynamodb"), env.catalog_table, burst=env.launch_burst,
                  per_second=env.launch_per_second)
    pacer.install(ec2)
    request = ec2_api.LaunchRequest(
        image_id=image["image_id"],
        root_device_name=build["root_device"],
        instance_types=recipe.test.types_or(tuple(recipe.build.instance_types)),
        user_data=recipe.test_user_data(),
        tags=tester_tags(common_tags(build, env)),
        client_token=f"{build['build_id']}-test",
        subnet_id=builder_subnet(recipe.build.subnet_id, recipe.build.security_group_ids, env),
        security_group_ids=builder_groups(recipe.build.security_group_ids, env),
        volume_size_gb=max(recipe.build.volume_size_gb or 0, int(build.get("root_volume_gb", 8))),
        kms_key_id=recipe.image.kms_key_id,
        instance_profile_arn=env.instance_profile_arn,
    )
    instance_id, instance_type, _ = ec2_api.run_builder(ec2, request)
    started = _now()
    env.catalog.update(build["recipe"], build["build_id"], tester_instance_id=instance_id,
                       test={"instance_id": instance_id, "outcome": "running",
                             "started_at": started})
    return {"enabled": True, "instance_id": instance_id, "instance_type": instance_type,
            "timeout_seconds": timeout_seconds, "started_at": started}


def verify_test(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """Input: {build, test, failed_test?}. Output {outcome: passed}; BuildFailed otherwise."""
    build, test = state["build"], state["test"]
    instance_id = test["instance_id"]
    ec2 = env.client("ec2")
    error = state.get("failed_test")
    if error is not None:
        return _not_passed(env, build, test, _error_reason(error, instance_id, test))
    instance = ec2_api.describe_instance(ec2, instance_id)
    instance_state = (instance or {}).get("State", {}).get("Name", "terminated")
    verdict = parse_console(ec2_api.console_output(ec2, instance_id))
    if verdict.outcome == "failure":
        return _not_passed(env, build, test,
                           f"test script failed (exit {verdict.exit_code}) on tester "
                           f"{instance_id}", verdict.tail)
    if instance_state != "stopped":
        return _not_passed(env, build, test,
                           f"tester {instance_id} is {instance_state}, not stopped: it ended "
                           "before its test finished", verdict.tail)
    if verdict.outcome == "missing":
        raise ConsoleNotReady(f"no AMIFORGE-RESULT marker in the console of tester "
                              f"{instance_id} yet")
    _terminate(env, build, instance_id, "its test passed")
    outcome = {"instance_id": instance_id, "outcome": "passed",
               "duration_seconds": _duration(test), "reason": "AMIFORGE-RESULT: success"}
    env.catalog.update(build["recipe"], build["build_id"], test=outcome)
    return {"outcome": "passed", "duration_seconds": outcome["duration_seconds"]}


def _error_reason(error: dict[str, Any], instance_id: str, test: dict[str, Any]) -> str:
    if error.get("Error") == "States.Timeout":
        return (f"timed out: tester {instance_id} did not stop within test.timeout_minutes "
                f"({int(test.get('timeout_seconds', 0))} s)")
    if error.get("Error") == "ConsoleNotReady":
        return (f"no AMIFORGE-RESULT marker: tester {instance_id} stopped but its console "
                "never showed the wrapper's result (did the test power off the instance "
                "itself?)")
    return failure_reason(error)


def _not_passed(env: StepEnv, build: dict[str, Any], test: dict[str, Any], reason: str,
                tail: str | None = None) -> dict[str, Any]:
    """Terminate the tester, record the outcome and the console tail, fail the build."""
    instance_id = test["instance_id"]
    if tail is None:
        try:
            tail = parse_console(ec2_api.console_output(env.client("ec2"), instance_id)).tail
        except Exception:  # the console is a nicety; the test is judged regardless
            tail = ""
    _terminate(env, build, instance_id, "its test did not pass")
    env.catalog.update(build["recipe"], build["build_id"],
                       console_tail=tail[-TAIL_CHARS:] or None,
                       test={"instance_id": instance_id, "outcome": "failed",
                             "duration_seconds": _duration(test), "reason": reason})
    raise BuildFailed(f"test failed: {reason}")


def _terminate(env: StepEnv, build: dict[str, Any], instance_id: str, why: str) -> None:
    """The tester goes through the deletion gate's instance rule for testers."""
    ec2 = env.client("ec2")
    instance = ec2_api.describe_instance(ec2, instance_id)
    if instance is None or instance.get("State", {}).get("Name") == "terminated":
        return
    owner = Owner(build["recipe"], build["build_id"], stack=env.stack_name or None)
    # This runs inside the build's own execution: its record exists and is BUILDING.
    verdict = decide_tester(InstanceFacts(instance_id, ec2_api.tags_of(instance), owner,
                                          "BUILDING"),
                            f"tester of build {build['build_id']}: {why}")
    if verdict.delete:
        ec2_api.terminate(ec2, [instance_id])


def _now() -> str:
    return datetime.now(UTC).strftime(_STAMP)


def _duration(test: dict[str, Any]) -> float | None:
    started = test.get("started_at")
    if not isinstance(started, str):
        return None
    try:
        begun = datetime.strptime(started, _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None
    return round(max(0.0, time.time() - begun.timestamp()), 1)
