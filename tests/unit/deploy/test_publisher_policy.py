"""The stack's PublisherPolicy allows what `plan`, `publish [--wait] [--prune]` and
`retire` call, and nothing else.

The calls are found by following the code from the operations those commands run (the
call graph of test_iam_covers_calls), not written by hand: a new call the policy lacks,
or a grant nothing calls any more, fails here.
"""

from __future__ import annotations

import pytest
from cfnlint.decode.cfn_yaml import loads
from tests.unit.deploy.test_iam_covers_calls import (
    AUTHORISED_AS,
    IMPLIED,
    CallGraph,
    _action_matches,
)

from amiforge.deploy.stack import template_text

# What the commands run: connect to the stack, plan, publish (and its revert sync),
# detect (in process), retire, follow the builds.
ENTRY_POINTS = [("amiforge.ops.connect", "connect"), ("amiforge.ops.plan", "plan"),
                ("amiforge.ops.publish", "publish"), ("amiforge.ops.publish", "missing_from"),
                ("amiforge.ops.publish", "retire"), ("amiforge.steps.detect", "detect"),
                ("amiforge.ops.builds", "wait_for_builds")]


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
        found |= {AUTHORISED_AS.get(op, op) for op in ops}
    for op in list(found):  # what AWS checks besides the operation itself
        found |= {action for action, _why in IMPLIED.get(op, [])}
    return found


def granted(template: dict) -> list[dict]:
    return template["Resources"]["PublisherPolicy"]["Properties"]["PolicyDocument"][
        "Statement"]


def actions_of(statement: dict) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


def test_the_policy_allows_every_call_the_commands_make(template: dict,
                                                        needed: set[str]) -> None:
    statements = granted(template)
    missing = [op for op in sorted(needed)
               if not any(_action_matches(op, a) for s in statements for a in actions_of(s))]
    assert missing == []


def test_the_policy_grants_nothing_they_do_not_call(template: dict, needed: set[str]) -> None:
    extra = [a for s in granted(template) for a in actions_of(s)
             if not any(_action_matches(op, a) for op in needed)]
    assert extra == []
    assert all(s["Effect"] == "Allow" and "*" not in "".join(actions_of(s))
               for s in granted(template))


def test_the_policy_is_exported_for_ci_roles(template: dict) -> None:
    output = template["Outputs"]["PublisherPolicyArn"]
    assert output["Value"] == {"Ref": "PublisherPolicy"}
    assert output["Export"]["Name"] == {"Fn::Sub": "${AWS::StackName}-PublisherPolicy"}
