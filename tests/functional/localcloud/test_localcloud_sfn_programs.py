"""A state machine's definition is parsed once and its program shared by its executions
(localcloud/fills/sfn_programs.py); each execution still counts its own retries."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

from amiforge.localcloud.fills.sfn_programs import draw_heap_keys, parsed_program
from amiforge.localcloud.fills.stepfunctions import boto_client_for
from amiforge.localcloud.testing import wait_for

ROLE = "arn:aws:iam::123456789012:role/sfn"

# Fails twice (a Retry of 2 attempts), then the Catch ends it in Caught: each execution
# must count its own attempts, or a shared program would leak one run's count into another.
RETRYING = {
    "StartAt": "Boom",
    "States": {
        "Boom": {"Type": "Fail", "Error": "Nope", "Cause": "always"},
    },
}


def _definition() -> str:
    return json.dumps({
        "StartAt": "Try",
        "States": {
            "Try": {"Type": "Parallel", "Branches": [RETRYING], "End": True,
                    "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1,
                               "MaxAttempts": 2, "BackoffRate": 1.0}],
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]},
            "Caught": {"Type": "Pass", "End": True},
        }})


def test_a_definition_is_parsed_once_with_every_heap_key_drawn() -> None:
    definition = _definition()
    program = parsed_program(definition)
    assert parsed_program(definition) is program
    assert parsed_program(definition.replace("Caught", "Handled")) is not program
    # every evaluable component already has its key: drawing again draws the same keys
    keys: list[str] = []

    def collect(value: Any, seen: set[int]) -> None:
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, EvalComponent):
            assert value._EvalComponent__heap_key is not None  # type: ignore[attr-defined]
            keys.append(value.heap_key)
        children = (value.values() if isinstance(value, dict) else value
                    if isinstance(value, list | tuple) else
                    vars(value).values() if hasattr(value, "__dict__") else [])
        for child in children:
            collect(child, seen)

    collect(program, set())
    assert len(keys) == draw_heap_keys(program) > 5
    assert len(set(keys)) == len(keys)


def test_executions_of_one_program_each_count_their_own_retries(local_cloud: Any) -> None:
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(name=f"shared-{uuid.uuid4().hex[:8]}",
                                   definition=_definition(), roleArn=ROLE)["stateMachineArn"]
    runs = [sfn.start_execution(stateMachineArn=arn)["executionArn"] for _ in range(3)]

    def ended() -> bool:
        return all(sfn.describe_execution(executionArn=r)["status"] != "RUNNING"
                   for r in runs)

    wait_for(ended, timeout=60, what="three executions of one program")
    for run in runs:
        assert sfn.describe_execution(executionArn=run)["status"] == "SUCCEEDED"
        events = sfn.get_execution_history(executionArn=run, maxResults=1000)["events"]
        # the first attempt and two retries, in this execution alone
        assert sum(e["type"] == "ParallelStateStarted" for e in events) == 3, run


def test_state_tasks_share_one_client_per_region_and_service(local_cloud: Any) -> None:
    assert boto_client_for("us-east-1", "lambda") is boto_client_for("us-east-1", "lambda")
    assert boto_client_for("eu-west-1", "lambda") is not boto_client_for("us-east-1",
                                                                          "lambda")
    assert boto_client_for("us-east-1", "sqs").meta.endpoint_url.startswith(
        "http://127.0.0.1:")
