"""aws/stepfunctions.py on the local cloud's Step Functions: the execution name is the
idempotency key; a missing execution or an answered token is an answer, not an error."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from amiforge.aws import stepfunctions as sfn_api
from amiforge.aws.session import AwsContext
from amiforge.errors import AwsCallFailed
from amiforge.localcloud.testing import wait_for

ROLE = "arn:aws:iam::123456789012:role/amiforge-test"
WAIT = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 600, "End": True}}}


@pytest.fixture()
def machine(aws: AwsContext, unique: Callable[[str], str]) -> str:
    return str(aws.client("stepfunctions").create_state_machine(
        name=unique("machine"), definition=json.dumps(WAIT), roleArn=ROLE)["stateMachineArn"])


def test_a_build_id_starts_one_execution(aws: AwsContext, machine: str) -> None:
    sfn = aws.client("stepfunctions")
    arn = sfn_api.start_build(sfn, machine, "web-0123", {"recipe": "web"})
    assert arn is not None and arn.endswith(":web-0123")
    assert sfn_api.status_of(sfn, arn) == "RUNNING"
    assert [e["executionArn"] for e in sfn_api.running_executions(sfn, machine)] == [arn]
    assert json.loads(sfn_api.describe(sfn, arn)["input"]) == {"recipe": "web"}
    assert sfn_api.stop(sfn, arn, cause="test", error="amiforge.Test") is True
    assert sfn_api.status_of(sfn, arn) == "ABORTED"
    assert sfn_api.history(sfn, arn)  # the events of what it did


def test_a_missing_execution_is_an_answer(aws: AwsContext, machine: str) -> None:
    sfn = aws.client("stepfunctions")
    missing = machine.replace(":stateMachine:", ":execution:") + ":nope"
    assert sfn_api.status_of(sfn, missing) is None
    assert sfn_api.stop(sfn, missing, cause="x") is False


def test_an_unknown_machine_is_an_error_naming_the_operation(aws: AwsContext,
                                                           machine: str) -> None:
    with pytest.raises(AwsCallFailed) as caught:
        sfn_api.start_build(aws.client("stepfunctions"), machine + "-gone", "b", {})
    assert caught.value.operation == "StartExecution"
    assert caught.value.code == "StateMachineDoesNotExist"


def test_an_unknown_token_resumes_nothing(aws: AwsContext) -> None:
    assert sfn_api.resume(aws.client("stepfunctions"), "x" * 40, {"ok": True}) is False




def test_the_last_entered_state_is_read_newest_first(aws: AwsContext,
                                                    unique: Callable[[str], str]) -> None:
    # 30 Pass states (60 events) before the Wait: more than one page of the newest events.
    names = [f"Step{i}" for i in range(30)]
    states: dict = {name: {"Type": "Pass", "Next": after}
                    for name, after in zip(names, [*names[1:], "Wait"], strict=True)}
    states["Wait"] = WAIT["States"]["Wait"]
    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(name=unique("passes"), roleArn=ROLE, definition=json.dumps(
        {"StartAt": names[0], "States": states}))["stateMachineArn"]
    arn = sfn_api.start_build(sfn, machine, unique("b"), {})
    assert arn is not None

    def entered() -> list[str]:
        return [e["stateEnteredEventDetails"]["name"] for e in sfn_api.history(sfn, arn)
                if "stateEnteredEventDetails" in e]
    wait_for(lambda: "Wait" in entered(), timeout=30, what="the execution to reach Wait")
    assert entered() == [*names, "Wait"]  # every page of the whole history, oldest first
    assert sfn_api.last_entered_state(sfn, arn) == "Wait"
    assert sfn_api.progress(sfn, arn) == ("RUNNING", "Wait")
    sfn_api.stop(sfn, arn, cause="test")
    assert sfn_api.last_entered_state(sfn, arn) == "Wait"
    # the status comes from the newest event: ExecutionAborted, once it is written
    ended = wait_for(lambda: (p := sfn_api.progress(sfn, arn))[0] != "RUNNING" and p,
                     timeout=30, what="the ExecutionAborted event")
    assert ended == ("ABORTED", "Wait")


def test_the_last_state_of_a_missing_execution_names_the_operation(aws: AwsContext,
                                                                   machine: str) -> None:
    sfn = aws.client("stepfunctions")
    missing = machine.replace(":stateMachine:", ":execution:") + ":nope"
    with pytest.raises(AwsCallFailed) as caught:
        sfn_api.last_entered_state(sfn, missing)
    assert caught.value.operation == "GetExecutionHistory"


def test_the_last_entered_state_is_found_behind_a_page_of_retries(
        aws: AwsContext, unique: Callable[[str], str]) -> None:
    # A task on a missing function, retried 3 times: its attempts and the execution's end
    # are more events than one page of the newest, all after the task's StateEntered.
    missing = "arn:aws:lambda:us-east-1:123456789012:function:amiforge-none"
    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(name=unique("retries"), roleArn=ROLE, definition=json.dumps(
        {"StartAt": "First", "States": {
            "First": {"Type": "Pass", "Next": "Call"},
            "Call": {"Type": "Task", "Resource": missing, "End": True, "Retry": [
                {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 3,
                 "BackoffRate": 1}]}}}))["stateMachineArn"]
    arn = sfn_api.start_build(sfn, machine, unique("b"), {})
    assert arn is not None
    wait_for(lambda: sfn_api.status_of(sfn, arn) != "RUNNING", timeout=30,
             what="the retries to run out")
    events = sfn_api.history(sfn, arn)
    entered = max(i for i, e in enumerate(events) if "stateEnteredEventDetails" in e)
    assert len(events) - entered > sfn_api.LATEST_PAGE, events  # more than a page after it
    assert sfn_api.last_entered_state(sfn, arn) == "Call"
    assert sfn_api.progress(sfn, arn) == ("FAILED", "Call")


def test_progress_reads_the_status_each_ending_event_gives(aws: AwsContext,
                                                          unique: Callable[[str], str]) -> None:
    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(name=unique("ends"), roleArn=ROLE, definition=json.dumps(
        {"StartAt": "Only", "States": {"Only": {"Type": "Pass", "End": True}}}))[
        "stateMachineArn"]
    arn = sfn_api.start_build(sfn, machine, unique("b"), {})
    assert arn is not None
    wait_for(lambda: sfn_api.status_of(sfn, arn) != "RUNNING", timeout=30, what="the end")
    assert sfn_api.progress(sfn, arn) == ("SUCCEEDED", "Only")
    assert sfn_api.progress(sfn, arn)[0] == sfn_api.status_of(sfn, arn)
    assert set(sfn_api.ENDING_EVENTS.values()) == {"SUCCEEDED", "FAILED", "ABORTED",
                                                   "TIMED_OUT"}
