"""The instance state-change rule invokes the instance-state function only for the states
its step acts on.

``steps/wait_stop.on_instance_state`` resumes a waiting build on ``stopped`` (the user
data powered the builder off) and on ``terminated`` (a builder or tester gone before it
stopped: AwaitStop must fail the build at once, not at its timeout). ``pending``,
``running`` and ``stopping`` need nothing, and ``shutting-down`` is always followed by
``terminated``; the rule filters those out.

The ``terminated`` event Finish causes when it terminates the builder needs no work
either, but the rule cannot tell it apart: EC2's state-change event carries only the
instance id and the state (no tags, no cause), and a builder terminated before it stopped
sends the same event. So it is not filtered in the rule; the function drops it after one
DescribeInstances and one GetItem (the record has no waiting task).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.decode.cfn_yaml import loads
from moto.events.models import EventPattern

from amiforge.deploy.stack import template_text


@pytest.fixture(scope="module")
def pattern() -> EventPattern:
    rule = loads(template_text())["Resources"]["InstanceStateRule"]["Properties"]
    return EventPattern.load(json.dumps(rule["EventPattern"]))


def event(state: str, source: str = "aws.ec2") -> dict[str, Any]:
    return {"version": "0", "id": "7bf73129-1428-4cd3-a780-95db273d1602",
            "detail-type": "EC2 Instance State-change Notification", "source": source,
            "account": "123456789012", "time": "2026-12-02T01:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"],
            "detail": {"instance-id": "i-0123456789abcdef0", "state": state}}


@pytest.mark.parametrize("state", ["stopped", "terminated"])
def test_the_states_the_step_acts_on_invoke_it(pattern: EventPattern, state: str) -> None:
    assert pattern.matches_event(event(state))


@pytest.mark.parametrize("state", ["pending", "running", "stopping", "shutting-down"])
def test_states_that_need_no_work_are_filtered_in_the_rule(pattern: EventPattern,
                                                           state: str) -> None:
    assert not pattern.matches_event(event(state))


def test_other_sources_are_filtered(pattern: EventPattern) -> None:
    assert not pattern.matches_event(event("stopped", source="custom.ec2"))
