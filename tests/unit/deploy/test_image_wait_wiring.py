"""The template's wiring for waiting on images by event (docs/architecture.md, "Waiting for
images"): AwaitImage and AwaitCopies are task-token waits with the image timeout, no state
loops while EC2 snapshots, EC2's AMI events reach the image-state function, and the
image check runs on its schedule."""

from __future__ import annotations

import json

import pytest
from cfnlint.decode.cfn_yaml import loads
from tests.unit.deploy.test_template_reliability import statement_actions, states

from amiforge.deploy.stack import template_text


@pytest.fixture(scope="module")
def template() -> dict:
    return loads(template_text())


@pytest.mark.parametrize(("name", "kind", "result"), [("AwaitImage", "image", "$.image"),
                                                      ("AwaitCopies", "copies",
                                                       "$.distribution")])
def test_the_image_waits_are_task_token_waits(template: dict, name: str, kind: str,
                                              result: str) -> None:
    state = states(template)[name]
    assert state["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
    assert state["Parameters"]["FunctionName"] == "arn-of-AwaitImageFunction.Arn"
    assert state["Parameters"]["Payload"]["token.$"] == "$$.Task.Token"
    assert state["Parameters"]["Payload"]["kind"] == kind
    assert state["TimeoutSecondsPath"] == "$.timing.image_timeout_seconds"
    assert state["ResultPath"] == result
    timeout = state["Catch"][0]
    assert (timeout["ErrorEquals"], timeout["Next"]) == (["States.Timeout"], "ImageTimedOut")


def test_nothing_loops_while_ec2_snapshots(template: dict) -> None:
    machine = states(template)
    assert machine["AwaitImage"]["Next"] == "Test?"
    assert machine["AwaitCopies"]["Next"] == "Register"
    assert machine["CopiesReady?"]["Default"] == "AwaitCopies"
    waits = {name for name, state in machine.items() if state["Type"] == "Wait"}
    # A CloudFormation builder's stack only: never an image, a copy or an instance
    # refresh (followed by event too, steps/refresh_wait.py).
    assert waits == {"WaitForBuildStack"}


def test_ec2s_ami_events_and_the_check_reach_the_image_state_function(template: dict) -> None:
    resources = template["Resources"]
    rule = resources["ImageStateRule"]["Properties"]
    assert rule["EventPattern"] == {"source": ["aws.ec2"],
                                    "detail-type": ["EC2 AMI State Change"],
                                    "detail": {"State": ["available", "failed"]}}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["ImageStateFunction", "Arn"]}
    assert "Input" not in target and "InputTransformer" not in target  # the whole event
    assert template["Parameters"]["ImageCheckSchedule"]["Default"] == "rate(1 minute)"
    check = resources["ImageCheckRule"]["Properties"]
    assert check["ScheduleExpression"] == {"Ref": "ImageCheckSchedule"}
    (tick,) = check["Targets"]
    assert tick["Arn"] == {"Fn::GetAtt": ["ImageStateFunction", "Arn"]}
    assert json.loads(tick["Input"]) == {"check": "images"}
    for permission, source in (("ImageStatePermission", "ImageStateRule"),
                               ("ImageCheckPermission", "ImageCheckRule")):
        assert resources[permission]["Properties"]["SourceArn"] == {
            "Fn::GetAtt": [source, "Arn"]}
    assert resources["ImageStateFunction"]["Properties"]["Handler"] == \
        "amiforge.handlers.pipeline.image_state"
    assert {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:DeleteItem",
            "states:SendTaskSuccess", "states:SendTaskFailure"} <= statement_actions(
        template, "ImageStateRole")
    assert {"dynamodb:PutItem", "dynamodb:DeleteItem", "states:SendTaskSuccess",
            "states:SendTaskFailure"} <= statement_actions(template, "AwaitImageRole")
