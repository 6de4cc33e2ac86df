"""Verify and AttemptFailed: every way a launch can fail counts against ``retries``.

EC2 and the catalog are small fakes here (the verdict is the unit); the state machine's
wiring is held by tests/unit/deploy/test_template.py and the whole path by the e2e
``hang`` and ``flaky`` journeys.
"""

from __future__ import annotations

from typing import Any

import pytest

from amiforge.errors import BuildFailed
from amiforge.steps.env import StepEnv
from amiforge.steps.verify import ConsoleNotReady, verify

BUILD = {"recipe": "web", "build_id": "web-0123456789abcdef0123", "retries": 1}


class FakeEc2:
    def __init__(self, state: str, console: str) -> None:
        self.state, self.console = state, console
        self.terminated: list[str] = []

    def describe_instances(self, *, InstanceIds: list[str]) -> dict:  # noqa: N803
        return {"Reservations": [{"Instances": [
            {"InstanceId": InstanceIds[0], "State": {"Name": self.state}}]}]}

    def get_console_output(self, *, InstanceId: str, Latest: bool = False) -> dict:  # noqa: N803
        return {"Output": self.console}

    def terminate_instances(self, *, InstanceIds: list[str]) -> dict:  # noqa: N803
        self.terminated += InstanceIds
        return {}


class FakeCatalog:
    def __init__(self) -> None:
        self.attempts: list[dict[str, Any]] = []
        self.fields: dict[str, Any] = {}

    def add_attempt(self, recipe: str, build_id: str, attempt: dict[str, Any]) -> bool:
        if len(self.attempts) >= attempt["attempt"]:
            return False
        self.attempts.append(attempt)
        return True

    def update(self, recipe: str, build_id: str, **fields: Any) -> bool:
        self.fields.update({k: v for k, v in fields.items() if v is not None})
        return True


class Env(StepEnv):
    def __init__(self, ec2: FakeEc2) -> None:
        super().__init__(catalog_table="catalog", recipes_table="recipes")
        self.ec2, self.fake_catalog = ec2, FakeCatalog()

    def client(self, service: str, region: str | None = None) -> Any:
        assert service == "ec2"
        return self.ec2

    @property
    def catalog(self) -> Any:  # type: ignore[override]
        return self.fake_catalog


def state(attempt: int, **extra: Any) -> dict[str, Any]:
    return {"build": dict(BUILD), "launch": {"instance_id": f"i-{attempt:017x}",
                                             "attempt": attempt}, **extra}


FAILED_CONSOLE = "installing\nAMIFORGE-RESULT: failure exit=3\n"


def test_a_failure_marker_relaunches_while_retries_remain_and_records_the_attempt() -> None:
    env = Env(FakeEc2("stopped", FAILED_CONSOLE))
    verdict = verify(state(1), env)
    assert verdict == {"outcome": "retry",
                       "reason": "build script failed (exit 3) on attempt 1 of 2"}
    assert env.ec2.terminated == ["i-00000000000000001"]
    (attempt,) = env.fake_catalog.attempts
    assert attempt["attempt"] == 1 and attempt["outcome"] == "failed"
    assert attempt["instance_id"] == "i-00000000000000001"
    assert "AMIFORGE-RESULT: failure exit=3" in attempt["console_tail"]


def test_the_last_attempt_fails_the_build_and_leaves_the_builder_to_record_failure() -> None:
    env = Env(FakeEc2("stopped", FAILED_CONSOLE))
    env.fake_catalog.attempts.append({"attempt": 1})
    with pytest.raises(BuildFailed, match=r"exit 3\) on attempt 2 of 2"):
        verify(state(2), env)
    assert env.ec2.terminated == []
    assert len(env.fake_catalog.attempts) == 2


@pytest.mark.parametrize("instance_state", ["terminated", "shutting-down"])
def test_a_builder_that_ended_without_stopping_is_a_failed_attempt(instance_state: str) -> None:
    env = Env(FakeEc2(instance_state, ""))
    verdict = verify(state(1), env)
    assert verdict["outcome"] == "retry"
    assert f"is {instance_state}, not stopped" in verdict["reason"]
    assert env.fake_catalog.attempts[0]["outcome"] == "failed"


def test_a_verify_rerun_records_the_attempt_once() -> None:
    env = Env(FakeEc2("stopped", FAILED_CONSOLE))
    verify(state(1), env)
    env.ec2.state = "shutting-down"  # the first run terminated it, then crashed
    assert verify(state(1), env)["outcome"] == "retry"
    assert len(env.fake_catalog.attempts) == 1


def test_a_missing_marker_on_a_stopped_builder_is_first_retried_as_transient() -> None:
    env = Env(FakeEc2("stopped", "booting\n"))
    with pytest.raises(ConsoleNotReady):
        verify(state(1), env)
    assert env.fake_catalog.attempts == []


@pytest.mark.parametrize(("error", "instance_state", "said"), [
    ("States.Timeout", "running", "timed out: builder i-00000000000000001 did not stop "
                                  "within build.timeout_minutes"),
    ("ConsoleNotReady", "stopped", "no AMIFORGE-RESULT marker: builder i-00000000000000001 "
                                   "stopped"),
])
def test_a_timeout_or_a_marker_that_never_came_counts_against_retries(
        error: str, instance_state: str, said: str) -> None:
    env = Env(FakeEc2(instance_state, "started the user data\n"))
    caught = {"Error": error, "Cause": '{"errorMessage": "no marker yet"}'}
    verdict = verify(state(1, failed_attempt=caught), env)
    assert verdict["outcome"] == "retry"
    assert verdict["reason"].startswith(said) and verdict["reason"].endswith("attempt 1 of 2")
    assert env.ec2.terminated == ["i-00000000000000001"]
    assert env.fake_catalog.attempts[0]["console_tail"] == "started the user data"
    with pytest.raises(BuildFailed, match=r"attempt 2 of 2$"):
        verify(state(2, failed_attempt=caught), env)


def test_a_marker_that_arrives_after_verifys_last_retry_still_counts() -> None:
    env = Env(FakeEc2("stopped", "late\nAMIFORGE-RESULT: success\n"))
    caught = {"Error": "ConsoleNotReady", "Cause": ""}
    assert verify(state(1, failed_attempt=caught), env) == {"outcome": "success"}
    assert env.ec2.terminated == []
    assert env.fake_catalog.attempts[0]["outcome"] == "succeeded"


def test_a_cloudformation_build_launches_once() -> None:
    env = Env(FakeEc2("running", ""))
    cfn = state(1, failed_attempt={"Error": "States.Timeout", "Cause": ""})
    cfn["build"]["builder"] = "cloudformation"
    with pytest.raises(BuildFailed, match=r"timed out: .* on attempt 1 of 1$"):
        verify(cfn, env)


def test_success_is_recorded_as_the_attempt_that_succeeded() -> None:
    env = Env(FakeEc2("stopped", "ok\nAMIFORGE-RESULT: success\n"))
    assert verify(state(2), env) == {"outcome": "success"}
    assert env.fake_catalog.attempts == [
        {"attempt": 2, "instance_id": "i-00000000000000002", "outcome": "succeeded",
         "reason": "AMIFORGE-RESULT: success"}]
