"""The template's reliability wiring: retries that cover crashes, the launch budget, and
the scheduled fallback for lost stop events."""

from __future__ import annotations

import json
import re

import pytest
from cfnlint.decode.cfn_yaml import loads

from amiforge.aws.pacing import LaunchThrottled
from amiforge.core import ratelimit
from amiforge.deploy.stack import template_text

# What a killed or timed-out function looks like to Step Functions; every step is
# idempotent, so these are retried like throttling.
CRASHES = {"Runtime.ExitError", "Sandbox.Timedout", "Lambda.Unknown"}


@pytest.fixture(scope="module")
def template() -> dict:
    return loads(template_text())


def states(template: dict) -> dict:
    sub = template["Resources"]["BuildStateMachine"]["Properties"]["DefinitionString"]["Fn::Sub"]
    text = sub if isinstance(sub, str) else sub[0]
    return json.loads(re.sub(r"\$\{([A-Za-z:.]+)\}", lambda m: f"arn-of-{m.group(1)}",
                             text))["States"]


def statement_actions(template: dict, role: str) -> set[str]:
    """Every action ``role`` allows: its own policies and its managed ones."""
    resources = template["Resources"]
    properties = resources[role]["Properties"]
    documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
    documents += [resources[m["Ref"]]["Properties"]["PolicyDocument"]
                  for m in properties.get("ManagedPolicyArns", []) if "Ref" in m]
    actions: set[str] = set()
    for document in documents:
        for statement in document["Statement"]:
            if isinstance(statement, dict) and "Action" in statement:
                found = statement["Action"]
                actions.update(found if isinstance(found, list) else [found])
    return actions


def test_every_task_retries_crashed_and_timed_out_functions(template: dict) -> None:
    for name, state in states(template).items():
        if state["Type"] != "Task":
            continue
        retried = {e for r in state.get("Retry", []) for e in r["ErrorEquals"]}
        assert "States.ALL" in retried or retried >= CRASHES, name
        for retrier in state.get("Retry", []):
            if retrier.get("MaxAttempts") == 0:  # "never retry this one", as InvalidEvent
                continue
            if retrier["ErrorEquals"] != ["ConsoleNotReady"]:
                assert retrier.get("JitterStrategy") == "FULL", name


def test_a_refused_event_is_never_retried(template: dict) -> None:
    # An event its schema refuses fails the same way every time: retrying only delays
    # the failure (RecordFailure retried a malformed input for two minutes).
    for name, state in states(template).items():
        first = (state.get("Retry") or [{}])[0]
        if name == "RecordFailure":
            assert first == {"ErrorEquals": ["InvalidEvent"], "MaxAttempts": 0}


def test_launch_backs_off_on_its_budget_before_anything_else(template: dict) -> None:
    first = states(template)["Launch"]["Retry"][0]
    assert first["ErrorEquals"] == [LaunchThrottled.__name__]
    assert first["MaxAttempts"] >= 50 and first["JitterStrategy"] == "FULL"
    assert first["MaxDelaySeconds"] <= 60


def test_the_launch_budget_stays_under_ec2s_bucket(template: dict) -> None:
    parameters = template["Parameters"]
    assert parameters["LaunchBurst"]["Default"] == ratelimit.DEFAULT_LAUNCH_BURST
    assert parameters["LaunchBurst"]["MaxValue"] <= ratelimit.EC2_RUN_INSTANCES_BURST
    assert parameters["LaunchesPerSecond"]["Default"] == ratelimit.DEFAULT_LAUNCH_PER_SECOND
    assert parameters["LaunchesPerSecond"]["MaxValue"] <= ratelimit.EC2_RUN_INSTANCES_PER_SECOND
    variables = template["Resources"]["LaunchFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["AMIFORGE_LAUNCH_BURST"] == {"Ref": "LaunchBurst"}
    assert variables["AMIFORGE_LAUNCHES_PER_SECOND"] == {"Ref": "LaunchesPerSecond"}
    assert {"dynamodb:GetItem", "dynamodb:UpdateItem"} <= statement_actions(template,
                                                                           "LaunchRole")


def test_the_instance_state_function_also_checks_waiting_builds_on_a_schedule(
        template: dict) -> None:
    resources = template["Resources"]
    assert template["Parameters"]["StopCheckSchedule"]["Default"] == "rate(1 minute)"
    rule = resources["StopCheckRule"]["Properties"]
    assert rule["ScheduleExpression"] == {"Ref": "StopCheckSchedule"}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["InstanceStateFunction", "Arn"]}
    assert json.loads(target["Input"]) == {"check": "waiting"}
    permission = resources["StopCheckPermission"]["Properties"]
    assert permission["SourceArn"] == {"Fn::GetAtt": ["StopCheckRule", "Arn"]}
    assert {"dynamodb:Query", "dynamodb:DeleteItem"} <= statement_actions(
        template, "InstanceStateRole")
    assert {"dynamodb:PutItem", "dynamodb:DeleteItem"} <= statement_actions(
        template, "AwaitStopRole")
