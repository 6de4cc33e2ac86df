"""Which parameter values a `deploy` sends, and what that changes: a pure decision.

A redeploy must not quietly undo an operator's settings: a value given once with
``amiforge deploy -p KEY=VALUE`` stays until it is given again. So every parameter the
template declares keeps the stack's current value unless the command line names it;
``--reset-parameters`` instead sends only what the command line names, so the rest return
to the template's defaults. Parameters that deploy itself owns (the bundle's location)
are always sent and never reported as an operator's change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from amiforge.errors import InvalidInput


@dataclass(frozen=True)
class ParameterChange:
    key: str
    old: str | None  # None: the stack did not exist or did not have this parameter yet
    new: str | None  # None: the template declares no default and nothing was given

    def as_dict(self) -> dict[str, str | None]:
        return {"parameter": self.key, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class ParameterPlan:
    values: dict[str, str]          # what to send; a key left out takes the template default
    changes: tuple[ParameterChange, ...]


def plan_parameters(declared: Mapping[str, str | None], previous: Mapping[str, str] | None,
                    overrides: Mapping[str, str], *, managed: Mapping[str, str],
                    reset: bool = False) -> ParameterPlan:
    """``declared``: the template's parameters and defaults; ``previous``: the stack's
    current values (None for a new stack); ``managed``: values deploy always sets."""
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise InvalidInput(f"-p {unknown[0]}: the stack template has no such parameter",
                           hint="known: " + ", ".join(sorted(set(declared) - set(managed))))
    taken = sorted(set(overrides) & set(managed))
    if taken:
        raise InvalidInput(f"-p {taken[0]}: set by `amiforge deploy` itself; leave it out")
    previous = previous or {}
    values: dict[str, str] = {}
    if not reset:
        values.update({k: v for k, v in previous.items() if k in declared and k not in managed})
    values.update(overrides)
    values.update(managed)
    changes = []
    for key in sorted(set(declared) - set(managed)):
        old = previous.get(key)
        new = values.get(key, declared[key])
        if old != new and not (old is None and key not in overrides):
            changes.append(ParameterChange(key, old, new))
    return ParameterPlan(values=values, changes=tuple(changes))
