"""Step Functions adapter: start builds by name (the build id), resume waiting tasks."""

from __future__ import annotations

import json
from typing import Any

from amiforge.aws.errors import ClientError, aws_call, error_code, translate

# A token that has already been answered, or whose task timed out: nothing to resume.
GONE_TOKEN_CODES = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})


def start_build(sfn: Any, state_machine_arn: str, build_id: str, payload: dict[str, Any]) -> str | None:
    """Start an execution named ``build_id``; None if that name was already used.

    The execution name is the idempotency key: Step Functions refuses a second execution
    of the same name, so two triggers for one build can never both run.
    """
    try:
        return str(sfn.start_execution(stateMachineArn=state_machine_arn, name=build_id,
                                       input=json.dumps(payload, sort_keys=True))["executionArn"])
    except ClientError as err:
        if error_code(err) == "ExecutionAlreadyExists":
            return None
        raise translate(err, "StartExecution") from err


def resume(sfn: Any, token: str, output: dict[str, Any]) -> bool:
    """SendTaskSuccess; False if the task is no longer waiting (answered or timed out)."""
    try:
        sfn.send_task_success(taskToken=token, output=json.dumps(output))
    except ClientError as err:
        if error_code(err) in GONE_TOKEN_CODES:
            return False
        raise translate(err, "SendTaskSuccess") from err
    return True


def fail_task(sfn: Any, token: str, *, error: str, cause: str) -> bool:
    """SendTaskFailure; False if the task is no longer waiting (answered or timed out)."""
    try:
        sfn.send_task_failure(taskToken=token, error=error[:256], cause=cause[:32768])
    except ClientError as err:
        if error_code(err) in GONE_TOKEN_CODES:
            return False
        raise translate(err, "SendTaskFailure") from err
    return True


def describe(sfn: Any, execution_arn: str) -> dict[str, Any]:
    with aws_call("DescribeExecution"):
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
    return described


def status_of(sfn: Any, execution_arn: str) -> str | None:
    """The execution's status (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED); None if
    there is no such execution."""
    try:
        return str(sfn.describe_execution(executionArn=execution_arn)["status"])
    except ClientError as err:
        if error_code(err) == "ExecutionDoesNotExist":
            return None
        raise translate(err, "DescribeExecution") from err


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    with aws_call("GetExecutionHistory"):
        for page in sfn.get_paginator("get_execution_history").paginate(
                executionArn=execution_arn):
            events.extend(page.get("events", []))
    return events


# Newest events per GetExecutionHistory page when only the latest state is wanted: a
# Lambda task adds 3 events after its StateEntered (scheduled, started, ended) and each
# retry 3 more, so one small page nearly always holds it; the next pages are read if not.
LATEST_PAGE = 8


# The event that ends an execution, and the status it ends in.
ENDING_EVENTS = {"ExecutionSucceeded": "SUCCEEDED", "ExecutionFailed": "FAILED",
                 "ExecutionAborted": "ABORTED", "ExecutionTimedOut": "TIMED_OUT"}


def progress(sfn: Any, execution_arn: str) -> tuple[str, str | None]:
    """(status, name of the state the execution entered last; None before its first),
    both read from its newest events, one page at a time: a poll costs one call, where
    DescribeExecution and the history would be two. The status is the one the newest
    event ends the execution in, else RUNNING."""
    status: str | None = None
    with aws_call("GetExecutionHistory"):
        for page in sfn.get_paginator("get_execution_history").paginate(
                executionArn=execution_arn, reverseOrder=True,
                PaginationConfig={"PageSize": LATEST_PAGE}):
            for event in page.get("events", []):
                if status is None:
                    status = ENDING_EVENTS.get(str(event.get("type")), "RUNNING")
                details = event.get("stateEnteredEventDetails")
                if details:
                    return status, str(details["name"]) if details.get("name") else None
    return status or "RUNNING", None


def last_entered_state(sfn: Any, execution_arn: str) -> str | None:
    """The name of the state the execution entered last (None before its first): read
    newest first, one page at a time, so a poll costs a page however long the history."""
    return progress(sfn, execution_arn)[1]


def running_executions(sfn: Any, state_machine_arn: str) -> list[dict[str, Any]]:
    """Every RUNNING execution of the machine: {name, executionArn, startDate, ...}."""
    found: list[dict[str, Any]] = []
    with aws_call("ListExecutions"):
        for page in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=state_machine_arn, statusFilter="RUNNING"):
            found.extend(page.get("executions", []))
    return found


def stop(sfn: Any, execution_arn: str, *, cause: str, error: str = "Cancelled") -> bool:
    """StopExecution; False if there is no such execution. Stopping one that already
    ended changes nothing (Step Functions keeps its status)."""
    try:
        sfn.stop_execution(executionArn=execution_arn, error=error[:256],
                           cause=cause[:32768])
    except ClientError as err:
        if error_code(err) == "ExecutionDoesNotExist":
            return False
        raise translate(err, "StopExecution") from err
    return True
