"""The build state machine is written once per idea: state_machine.yaml's policy table,
assembled by amiforge.deploy.machine."""

from __future__ import annotations

import json

from cfnlint.decode.cfn_yaml import loads

from amiforge.deploy import machine
from amiforge.deploy.stack import template_text


def test_the_assembled_definition_is_the_hand_written_one() -> None:
    # Same states, same retriers and catchers in the same order: template.yaml's
    # definition can be replaced by the assembled one without changing behaviour.
    sub = loads(template_text())["Resources"]["BuildStateMachine"]["Properties"][
        "DefinitionString"]["Fn::Sub"]
    assert machine.assemble() == json.loads(sub)
    assert json.loads(machine.definition_text()) == machine.assemble()
