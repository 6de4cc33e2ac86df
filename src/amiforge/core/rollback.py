"""Rollback: which build `latest` goes back to, and which builds are revoked. Pure.

``amiforge rollback RECIPE [--to BUILD_ID]`` (``ops/rollback.py``) takes `latest` away
from a bad image. What it does is decided here, from the recipe's catalog records and its
published hash, by the one rule `latest` follows (:func:`amiforge.core.latest.rank`):

* without ``--to``, the build `latest` names now is revoked, and `latest` goes to the
  build the rule picks among the AVAILABLE builds that remain (the "previous" image);
* with ``--to BUILD_ID`` (an AVAILABLE build of the recipe), *every* AVAILABLE build that
  ranks above it is revoked, since otherwise one of them would name `latest` and the
  rollback would not land where it was asked to. With builds C > B > A, ``--to A``
  revokes C and B.

A REVOKED build keeps its image (``amiforge release BUILD_ID`` undoes the rollback), is
never `latest` (:func:`~amiforge.core.latest.choose_latest` counts AVAILABLE builds
only, and the catalog's ``available`` index no longer lists it), and detection does not
build its key again (``core/plan.py``). Each REVOKED record names the build it rolled
back to (``rolled_back_to``): :func:`rollback_targets` derives from that which builds
retention keeps whatever ``keep`` says, so releasing the revoked build ends the
protection by itself.

Every refusal is :class:`amiforge.errors.InvalidInput` (exit 2) naming the value and
what to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from amiforge.core.latest import choose_latest, rank
from amiforge.errors import InvalidInput, NotFound

AVAILABLE, REVOKED = "AVAILABLE", "REVOKED"
# Events of a record's ``rollbacks`` list (its history of rollbacks and releases).
EV_REVOKED, EV_TARGET, EV_RELEASED, EV_UNDONE = (
    "revoked", "rollback_target", "released", "rollback_undone")


@dataclass(frozen=True)
class RollbackPlan:
    """What one rollback does: ``revoke`` (highest rank first) and where `latest` lands."""

    recipe: str
    current: Mapping[str, Any]            # the build `latest` names now
    target: Mapping[str, Any]             # the build `latest` names after
    revoke: tuple[Mapping[str, Any], ...]

    @property
    def revoked_ids(self) -> list[str]:
        return [str(b["build_id"]) for b in self.revoke]


def plan_rollback(recipe: str, builds: Sequence[Mapping[str, Any]],
                  published_hash: str | None, *, to: str | None = None) -> RollbackPlan:
    """The rollback of ``recipe`` given its catalog records (any status); raises
    InvalidInput (exit 2) when there is nothing to roll back to."""
    history = f"`amiforge history {recipe}` lists its builds"
    available = [b for b in builds if b.get("status") == AVAILABLE]
    current = choose_latest(available, published_hash)
    if current is None:
        raise InvalidInput(f"recipe {recipe!r} has no AVAILABLE image: `latest` names "
                           "nothing, so there is nothing to roll back", hint=history)
    if to is None:
        rest = [b for b in available if b.get("build_id") != current.get("build_id")]
        target = choose_latest(rest, published_hash)
        if target is None:
            raise InvalidInput(
                f"recipe {recipe!r} has no previous AVAILABLE image to roll back to: "
                f"{current.get('build_id')} ({current.get('image_id')}) is its only one",
                hint="publish a fixed recipe to build a new image, or `amiforge release "
                     "BUILD_ID` a build revoked before")
        return RollbackPlan(recipe, current, target, (current,))
    target = next((b for b in builds if b.get("build_id") == to), None)
    if target is None:
        raise NotFound(f"--to {to!r} is not a build of recipe {recipe!r}", hint=history)
    if target.get("status") != AVAILABLE:
        undo = (f"; `amiforge release {to}` makes it AVAILABLE again"
                if target.get("status") == REVOKED else "")
        raise InvalidInput(f"--to {to!r} is {target.get('status')}, not AVAILABLE: only an "
                           f"AVAILABLE build of {recipe!r} can become `latest` again{undo}",
                           hint=history)
    if target.get("build_id") == current.get("build_id"):
        raise InvalidInput(f"--to {to!r} is already `latest` of {recipe!r}: nothing to "
                           "roll back", hint=history)
    above = rank(target, published_hash)
    revoke = sorted((b for b in available if rank(b, published_hash) > above),
                    key=lambda b: rank(b, published_hash), reverse=True)
    return RollbackPlan(recipe, current, target, tuple(revoke))


def rollback_targets(builds: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """{build id: [the REVOKED builds that rolled back to it]}: the builds retention keeps
    whatever ``keep`` says (until those builds are released)."""
    targets: dict[str, list[str]] = {}
    for build in builds:
        if build.get("status") == REVOKED and build.get("rolled_back_to"):
            targets.setdefault(str(build["rolled_back_to"]), []).append(str(build["build_id"]))
    return {target: sorted(revoked) for target, revoked in targets.items()}


def revoked_build(builds: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest REVOKED build among ``builds`` (one build key's), or None: detection
    does not build that key again on its own."""
    revoked = [b for b in builds if b.get("status") == REVOKED]
    return max(revoked, key=lambda b: str(b.get("created_at") or ""), default=None)


def event(kind: str, *, at: str, by: str, reason: str,
          builds: Iterable[str] = ()) -> dict[str, Any]:
    """One entry of a record's ``rollbacks`` list: what happened to the build, when, who
    did it and why; ``builds`` the other side (the target of a revoked build, the builds
    revoked for a target)."""
    return {"event": kind, "at": at, "by": by, "reason": reason, "builds": list(builds)}
