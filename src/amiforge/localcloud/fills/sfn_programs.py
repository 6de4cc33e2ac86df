"""Step Functions programs: a definition is parsed once, not once per execution.

moto 5.2.5 parses an execution's definition with its ANTLR grammar when the execution
starts (``ExecutionWorker._get_evaluation_entrypoint``): about 0.09 s of CPU for the build
state machine, for every build, retry and test journey; 5% of a test run's CPU. Here the
program parsed from a definition is kept (the last :data:`KEPT` definitions) and shared
by the executions of that definition.

Sharing is safe because a parsed program holds no state of an execution: what an
execution changes lives in its own ``Environment`` (its heap keeps retry counts, keyed by
each component's ``heap_key``). The one thing a component sets after parsing is that
key, drawn on first use; two executions drawing it at once could each count retries
under a different key, so every key is drawn here, before the program is shared.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from amiforge.localcloud.fills import Fill

KEPT = 64  # definitions: a worker's local cloud holds a few dozen state machines


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    return list(vars(value).values()) if hasattr(value, "__dict__") else []


def draw_heap_keys(program: Any) -> int:
    """Draw the ``heap_key`` of every evaluable component under ``program``; how many."""
    from moto.stepfunctions.parser.asl.component.component import Component
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    seen: set[int] = set()
    pending = [program]
    drawn = 0
    while pending:
        value = pending.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, EvalComponent):
            _ = value.heap_key
            drawn += 1
        if isinstance(value, Component | dict | list | tuple | set | frozenset):
            pending.extend(_children(value))
    return drawn


@functools.lru_cache(maxsize=KEPT)
def parsed_program(definition: str) -> Any:
    """The evaluable program of ``definition``, parsed once (its heap keys drawn)."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    program = AmazonStateLanguageParser.parse(definition)[0]
    draw_heap_keys(program)
    return program


def _entrypoint(_original: Callable[..., Any]) -> Callable[..., Any]:
    def get_evaluation_entrypoint(self: Any) -> Any:
        return parsed_program(self._evaluation_details.state_machine_details.definition)

    return get_evaluation_entrypoint


FILLS = [
    Fill("stepfunctions.program-parsed-once",
         "moto.stepfunctions.parser.backend.execution_worker:ExecutionWorker",
         "_get_evaluation_entrypoint", _entrypoint, "2b25949ae855"),
]
