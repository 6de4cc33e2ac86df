"""The stack's ApproverPolicy allows what `approve`, `reject` and the awaiting-approval
listing call, and nothing else (found by following the code, as for the PublisherPolicy)."""

from __future__ import annotations

import pytest
from cfnlint.decode.cfn_yaml import loads
from tests.unit.deploy.test_iam_covers_calls import IMPLIED, CallGraph, _action_matches

from amiforge.deploy.stack import template_text

ENTRY_POINTS = [("amiforge.ops.connect", "connect"), ("amiforge.ops.approval", "approve"),
                ("amiforge.ops.approval", "reject"), ("amiforge.ops.approval", "awaiting")]


@pytest.fixture(scope="module")
def template() -> dict:
    return loads(template_text())


@pytest.fixture(scope="module")
def needed() -> set[str]:
    graph = CallGraph()
    found: set[str] = set()
    for start in ENTRY_POINTS:
        ops, _paths, trouble = graph.reach(start)
        assert trouble == [], trouble
        found |= ops
    for op in list(found):
        found |= {action for action, _why in IMPLIED.get(op, [])}
    return found


def statements(template: dict) -> list[dict]:
    return template["Resources"]["ApproverPolicy"]["Properties"]["PolicyDocument"][
        "Statement"]


def actions_of(statement: dict) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def test_the_policy_allows_exactly_the_calls_the_commands_make(template: dict,
                                                               needed: set[str]) -> None:
    granted = statements(template)
    assert {"states:SendTaskSuccess", "states:SendTaskFailure"} <= needed
    missing = [op for op in sorted(needed)
               if not any(_action_matches(op, a) for s in granted for a in actions_of(s))]
    extra = [a for s in granted for a in actions_of(s)
             if not any(_action_matches(op, a) for op in needed)]
    assert (missing, extra) == ([], [])
    assert all(s["Effect"] == "Allow" and "*" not in "".join(actions_of(s)) for s in granted)


def test_the_policy_is_exported(template: dict) -> None:
    output = template["Outputs"]["ApproverPolicyArn"]
    assert output["Value"] == {"Ref": "ApproverPolicy"}
    assert output["Export"]["Name"] == {"Fn::Sub": "${AWS::StackName}-ApproverPolicy"}
