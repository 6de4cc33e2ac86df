"""The build state machine, assembled from ``state_machine.yaml``'s states and policies.

``state_machine.yaml`` writes each retry and catch policy once, under ``Policies``; a state
names the policies it uses, in order, and a Task that names none gets ``Defaults``. An
inline retrier or catcher is refused: a new behaviour is a new, named policy.
:func:`inline` puts the assembled definition into ``template.yaml`` in place of
``BuildStateMachine``'s ``DefinitionString: "{{ state_machine.yaml }}"`` line, as the
``!Sub`` of its JSON, so CloudFormation, cfn-lint and the local cloud all read one plain
template (no YAML aliases: CloudFormation does not accept them).
"""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from typing import Any

import yaml

SOURCE = "state_machine.yaml"
MARKER = 'DefinitionString: "{{ state_machine.yaml }}"'
POLICY_FIELDS = ("Retry", "Catch")
_MARKER_LINE = re.compile(r"^(?P<indent> *)" + re.escape(MARKER) + r"[ \t]*$", re.MULTILINE)


class MachineSourceError(ValueError):
    """state_machine.yaml names a policy that does not exist, or writes one inline."""


def source() -> dict[str, Any]:
    """``state_machine.yaml`` as written: ``Policies`` and ``Definition``."""
    text = resources.files("amiforge.deploy").joinpath(SOURCE).read_text()
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def assemble(machine: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Amazon States Language definition: every state's policy names replaced by the
    policies they name (a Task without any gets the defaults)."""
    machine = source() if machine is None else machine
    policies, definition = machine["Policies"], machine["Definition"]
    states: dict[str, Any] = definition["States"]
    assembled_states = {name: _assemble_state(name, state, policies, states)
                        for name, state in states.items()}
    return {**definition, "States": assembled_states}


def _assemble_state(name: str, state: dict[str, Any], policies: dict[str, Any],
                    states: dict[str, Any]) -> dict[str, Any]:
    named = {field: state.get(field, policies["Defaults"][field] if state["Type"] == "Task"
                              else None)
             for field in POLICY_FIELDS}
    # Retry and Catch just before Next/End, as a reader expects them.
    result = {key: value for key, value in state.items()
              if key not in (*POLICY_FIELDS, "Next", "End")}
    for field in POLICY_FIELDS:
        entries = named[field]
        if entries is None:
            continue
        result[field] = [_policy(name, field, entry, policies) for entry in entries]
    for key in ("Next", "End"):
        if key in state:
            result[key] = state[key]
    for catcher in result.get("Catch", []):
        if catcher["Next"] not in states:
            raise MachineSourceError(f"{SOURCE}: {name}'s catch goes to {catcher['Next']!r}, "
                                     "which is not a state")
    return result


def _policy(state: str, field: str, entry: Any, policies: dict[str, Any]) -> dict[str, Any]:
    table: dict[str, Any] = policies[field]
    if not isinstance(entry, str):
        raise MachineSourceError(f"{SOURCE}: {state}'s {field} writes a policy inline; "
                                 f"name one of Policies.{field} ({', '.join(table)}) or add one")
    if entry not in table:
        raise MachineSourceError(f"{SOURCE}: {state}'s {field} names {entry!r}, which is not "
                                 f"in Policies.{field} ({', '.join(table)})")
    policy: dict[str, Any] = copy.deepcopy(table[entry])
    return policy


def definition_text(definition: dict[str, Any] | None = None) -> str:
    """The definition as JSON text, one state per line (a Step Functions console shows it
    formatted; the template stays about the size of the hand-written one)."""
    definition = assemble() if definition is None else definition
    fields = [f"  {json.dumps(key)}: {json.dumps(value)}"
              for key, value in definition.items() if key != "States"]
    states = ",\n".join(f"    {json.dumps(name)}: {json.dumps(state)}"
                        for name, state in definition["States"].items())
    return "{\n" + ",\n".join([*fields, '  "States": {\n' + states + "\n  }"]) + "\n}\n"


def inline(template: str, definition: dict[str, Any] | None = None) -> str:
    """``template`` with its marker line replaced by ``DefinitionString: !Sub |`` and the
    definition's JSON, indented as that block scalar needs."""
    found = _MARKER_LINE.findall(template)
    if len(found) != 1:
        raise MachineSourceError(f"the template must hold {MARKER} on a line of its own "
                                 f"exactly once (found {len(found)})")
    text = definition_text(definition)

    def replace(match: re.Match[str]) -> str:
        indent = match["indent"]
        body = "\n".join(indent + "  " + line for line in text.splitlines())
        return f"{indent}DefinitionString: !Sub |\n{body}"

    return _MARKER_LINE.sub(replace, template)
