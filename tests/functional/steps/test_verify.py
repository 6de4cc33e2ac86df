"""Verify and AttemptFailed on the local cloud: every way a launch can fail counts against
``retries``; a failed attempt's builder is terminated before the relaunch; the last
attempt fails the build; each attempt is recorded once in the catalog.

The builders are the local cloud's simulated ones: ``# amiforge-sim: fail`` makes the
script exit 1 (the wrapper's failure marker in the console), ``hang`` keeps it running,
``crash`` ends it before it runs. Replaces tests/unit/steps/test_verify.py's FakeEc2 and
FakeCatalog with the same assertions.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.helpers import Publish, instance_state, launched, stopped, wait_state

from amiforge.errors import BuildFailed
from amiforge.steps.env import StepEnv
from amiforge.steps.launch import launch
from amiforge.steps.verify import ConsoleNotReady, verify

FAIL = "# amiforge-sim: fail\necho installing\n"
HANG = "# amiforge-sim: hang\n"


def attempts(env: StepEnv, state: dict[str, Any]) -> list[dict[str, Any]]:
    build = state["build"]
    return (env.catalog.get(build["recipe"], build["build_id"]) or {}).get("attempts", [])


def relaunched(env: StepEnv, state: dict[str, Any]) -> dict[str, Any]:
    """The state of the next attempt (Relaunch? back to Launch), once it stopped."""
    nxt = {**state, "launch": launch(state, env)}
    wait_state(env, nxt["launch"]["instance_id"], "stopped", "terminated")
    return nxt


def test_a_failure_marker_relaunches_while_retries_remain_and_records_the_attempt(
        env: StepEnv, published: Publish) -> None:
    state = stopped(env, published(script=FAIL))
    instance_id = state["launch"]["instance_id"]

    verdict = verify(state, env)

    assert verdict == {"outcome": "retry",
                       "reason": "build script failed (exit 1) on attempt 1 of 2"}
    assert instance_state(env, instance_id) in ("shutting-down", "terminated")
    (attempt,) = attempts(env, state)
    assert (attempt["attempt"], attempt["outcome"], attempt["instance_id"]) == (
        1, "failed", instance_id)
    assert "AMIFORGE-RESULT: failure exit=1" in attempt["console_tail"]
    record = env.catalog.get(state["build"]["recipe"], state["build"]["build_id"])
    assert record["last_attempt_reason"] == verdict["reason"]


def test_the_last_attempt_fails_the_build_and_leaves_the_builder_to_record_failure(
        env: StepEnv, published: Publish) -> None:
    state = stopped(env, published(script=FAIL))
    verify(state, env)
    last = relaunched(env, state)
    with pytest.raises(BuildFailed, match=r"exit 1\) on attempt 2 of 2$"):
        verify(last, env)
    assert instance_state(env, last["launch"]["instance_id"]) == "stopped"
    assert [a["attempt"] for a in attempts(env, state)] == [1, 2]


def test_a_builder_that_ended_without_stopping_is_a_failed_attempt(
        env: StepEnv, published: Publish) -> None:
    state = stopped(env, published(script="# amiforge-sim: crash\n"))
    instance_id = state["launch"]["instance_id"]
    assert instance_state(env, instance_id) == "terminated"
    verdict = verify(state, env)
    assert verdict["outcome"] == "retry"
    assert f"builder {instance_id} is terminated, not stopped" in verdict["reason"]
    assert attempts(env, state)[0]["outcome"] == "failed"


def test_a_verify_rerun_records_the_attempt_once(env: StepEnv, published: Publish) -> None:
    state = stopped(env, published(script=FAIL))
    verify(state, env)  # terminates the builder, then (say) the Lambda crashed
    assert verify(state, env)["outcome"] == "retry"
    assert len(attempts(env, state)) == 1


def test_a_missing_marker_on_a_stopped_builder_is_first_retried_as_transient(
        env: StepEnv, published: Publish) -> None:
    state = launched(env, published(script=HANG))
    instance_id = state["launch"]["instance_id"]
    wait_state(env, instance_id, "running")
    env.client("ec2").stop_instances(InstanceIds=[instance_id])  # stopped, no marker
    wait_state(env, instance_id, "stopped")
    with pytest.raises(ConsoleNotReady, match=f"no AMIFORGE-RESULT marker in the console "
                                              f"of {instance_id} yet"):
        verify(state, env)
    assert attempts(env, state) == []

    caught = {"Error": "ConsoleNotReady", "Cause": '{"errorMessage": "no marker yet"}'}
    verdict = verify({**state, "failed_attempt": caught}, env)  # AttemptFailed
    assert verdict["outcome"] == "retry"
    assert verdict["reason"].startswith(f"no AMIFORGE-RESULT marker: builder {instance_id} "
                                        "stopped")
    assert verdict["reason"].endswith("attempt 1 of 2")


def test_a_timeout_counts_against_retries(env: StepEnv, published: Publish) -> None:
    state = launched(env, published(script=HANG))
    instance_id = state["launch"]["instance_id"]
    wait_state(env, instance_id, "running")
    caught = {"Error": "States.Timeout", "Cause": ""}

    verdict = verify({**state, "failed_attempt": caught}, env)

    assert verdict == {"outcome": "retry", "reason": (
        f"timed out: builder {instance_id} did not stop within build.timeout_minutes "
        "on attempt 1 of 2")}
    assert instance_state(env, instance_id) in ("shutting-down", "terminated")
    second = {**state, "launch": launch(state, env)}
    with pytest.raises(BuildFailed, match=r"attempt 2 of 2$"):
        verify({**second, "failed_attempt": caught}, env)
    assert [a["outcome"] for a in attempts(env, state)] == ["failed", "failed"]


def test_a_marker_that_arrives_after_verifys_last_retry_still_counts(
        env: StepEnv, published: Publish) -> None:
    state = stopped(env, published())
    caught = {"Error": "ConsoleNotReady", "Cause": ""}
    assert verify({**state, "failed_attempt": caught}, env) == {"outcome": "success"}
    assert instance_state(env, state["launch"]["instance_id"]) == "stopped"
    assert attempts(env, state)[0]["outcome"] == "succeeded"


def test_a_cloudformation_build_launches_once(env: StepEnv, published: Publish) -> None:
    state = launched(env, published(script=HANG))
    state["build"]["builder"] = "cloudformation"
    with pytest.raises(BuildFailed, match=r"timed out: .* on attempt 1 of 1$"):
        verify({**state, "failed_attempt": {"Error": "States.Timeout", "Cause": ""}}, env)


def test_success_is_recorded_as_the_attempt_that_succeeded(env: StepEnv,
                                                          published: Publish) -> None:
    state = stopped(env, published())
    assert verify(state, env) == {"outcome": "success"}
    assert attempts(env, state) == [
        {"attempt": 1, "instance_id": state["launch"]["instance_id"],
         "outcome": "succeeded", "reason": "AMIFORGE-RESULT: success"}]
