"""The template's wiring for following instance refreshes by event (docs/architecture.md,
"Waiting for instance refreshes"): AwaitRefresh is a task-token wait bounded by the
rollout's timeout (RefreshTimedOut then rolls back), nothing loops while a group is
refreshed, AWS's documented final refresh events reach the await-refresh function in
the home region, and the refresh check runs on the image check's schedule."""

from __future__ import annotations

import pytest
from cfnlint.decode.cfn_yaml import loads
from tests.unit.deploy.test_template_reliability import statement_actions, states

from amiforge.deploy.stack import template_text
from amiforge.steps.refresh_wait import FINAL_EVENTS


@pytest.fixture(scope="module")
def template() -> dict:
    return loads(template_text())


def test_await_refresh_is_a_task_token_wait_bounded_by_the_refresh_timeout(
        template: dict) -> None:
    machine = states(template)
    state = machine["AwaitRefresh"]
    assert state["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
    assert state["Parameters"]["FunctionName"] == "arn-of-AwaitRefreshFunction.Arn"
    assert state["Parameters"]["Payload"]["token.$"] == "$$.Task.Token"
    assert state["TimeoutSecondsPath"] == "$.rollout.timeout_seconds"
    assert (state["ResultPath"], state["Next"]) == ("$.rollout", "Refreshed?")
    timeout = state["Catch"][0]
    assert (timeout["ErrorEquals"], timeout["Next"]) == (["States.Timeout"], "RefreshTimedOut")
    timed_out = machine["RefreshTimedOut"]
    assert timed_out["Parameters"]["timed_out"] is True
    assert (timed_out["ResultPath"], timed_out["Next"]) == ("$.rollout", "Refreshed?")
    # Nothing loops: Refreshed? goes to the wait, never to a Wait state.
    assert not any(s["Type"] == "Wait" and "Refresh" in name for name, s in machine.items())
    assert {c["Next"] for c in machine["Refreshed?"]["Choices"]} == {"AwaitRefresh",
                                                                      "RollBackRelease"}


def test_the_final_refresh_events_and_the_check_reach_the_await_refresh_function(
        template: dict) -> None:
    resources = template["Resources"]
    pattern = resources["RefreshStateRule"]["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.autoscaling"]
    assert set(pattern["detail-type"]) == FINAL_EVENTS
    [target] = resources["RefreshStateRule"]["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["AwaitRefreshFunction", "Arn"]}
    check = resources["RefreshCheckRule"]["Properties"]
    assert check["ScheduleExpression"] == {"Ref": "ImageCheckSchedule"}
    [tick] = check["Targets"]
    assert tick["Arn"] == {"Fn::GetAtt": ["AwaitRefreshFunction", "Arn"]}
    assert tick["Input"] == '{"check": "refreshes"}'
    for permission, source in (("RefreshStatePermission", "RefreshStateRule"),
                               ("RefreshCheckPermission", "RefreshCheckRule")):
        assert resources[permission]["Properties"]["SourceArn"] == {
            "Fn::GetAtt": [source, "Arn"]}
    assert resources["AwaitRefreshFunction"]["Properties"]["Handler"] == \
        "amiforge.handlers.pipeline.await_refresh"
    assert {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:DeleteItem",
            "states:SendTaskSuccess", "autoscaling:DescribeInstanceRefreshes"} <= \
        statement_actions(template, "AwaitRefreshRole")
