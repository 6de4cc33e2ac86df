"""The instance state-change rule invokes the instance-state function only for the state
its step acts on: ``stopped``.

``steps/wait_stop.on_instance_state`` judges a stopped builder, creates its image and
resumes its build on ``stopped`` (the user data powered the builder off). ``pending``,
``running``, ``stopping`` and ``shutting-down`` need nothing. ``terminated`` is filtered
too: once per build it is the event Finish causes by terminating the builder, which needs
no work; a builder or tester terminated before it stopped (rare) is found by the stop
check on its schedule (``steps/stop_check.py``), which reads the instance's state itself.
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


def test_the_state_the_step_acts_on_invokes_it(pattern: EventPattern) -> None:
    assert pattern.matches_event(event("stopped"))


@pytest.mark.parametrize("state", ["pending", "running", "stopping", "shutting-down",
                                   "terminated"])
def test_states_that_need_no_work_are_filtered_in_the_rule(pattern: EventPattern,
                                                           state: str) -> None:
    assert not pattern.matches_event(event(state))


def test_other_sources_are_filtered(pattern: EventPattern) -> None:
    assert not pattern.matches_event(event("stopped", source="custom.ec2"))
