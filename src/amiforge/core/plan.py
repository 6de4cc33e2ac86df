"""Plan: from what is (recipe hash, current base image, last build claim) to what to do.

Pure functions. ``amiforge plan`` shows these decisions; the detect function acts on them.
A build key is (recipe hash, base AMI): a recipe is stale exactly when the key of its
current version on its current base differs from the key of its last build.

A key whose last build FAILED is not up to date: detection builds it again on its own,
after a backoff of 1, 2, 4 ... detection periods from the last failure, at most
``build.retry_failed`` times; then it stops and says so, until the recipe or its base
changes or someone runs ``amiforge build``. A key whose last build was CANCELLED is left
alone (someone stopped it on purpose) until the recipe or its base changes or someone runs
``amiforge build``; ``plan`` says so. A key whose build was REVOKED (``amiforge
rollback``) is left alone too (:func:`revoked`), until it is released, the recipe or its
base changes, or someone runs ``amiforge build --rebuild``. Each build of one key after
the first is a new *generation* with its own execution name (:func:`generation_id`): Step Functions
runs one execution per name, so concurrent starters of the same generation start one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from amiforge.core.hashing import build_key
from amiforge.core.statuses import IN_FLIGHT

BUILD, SKIP, RELEASE = "build", "skip", "release"
NEVER_BUILT = "never built"
RECIPE_CHANGED = "recipe changed"
BASE_CHANGED = "base changed"
UP_TO_DATE = "up to date"
NO_BASE = "base not found"
BUILDING_NOW = "building"
FAILED = "failed"
RETRY_FAILED = "retry failed build"
CANCELLED = "cancelled"
RE_RELEASE = "re-release"
REVOKED = "revoked"
# Schedules do not tick exactly on time: a retry is due from half a period early.
_SLACK = 0.5


@dataclass(frozen=True)
class LastBuild:
    """What the catalog says about the claimed key's builds (read only when it matters).

    ``status``/``build_id``/``reason``/``finished_at`` are of the newest build of the
    key; ``failures`` counts its FAILED builds since the last one that succeeded.
    """

    status: str
    build_id: str
    reason: str = ""
    finished_at: datetime | None = None
    failures: int = 0


@dataclass(frozen=True)
class RetryPolicy:
    limit: int                 # build.retry_failed
    period: timedelta          # the detection schedule's period
    now: datetime


def retry_due(failures: int, finished_at: datetime | None, policy: RetryPolicy
              ) -> datetime | None:
    """When the retry after ``failures`` failures is due; None when the limit is reached.

    The n-th retry waits 2**(n-1) periods after the last failure (1, 2, 4 ...).
    """
    if failures > policy.limit:
        return None
    wait = policy.period * ((1 << max(0, failures - 1)) - _SLACK)
    return (finished_at or policy.now) + max(wait, timedelta(0))


def generation_id(key: str, generation: int) -> str:
    """The build id (execution name) of the ``generation``-th build of ``key``: the key
    itself for the first, ``<key>-g<N>`` after (at most 61 + 5 characters of 80)."""
    return key if generation <= 1 else f"{key}-g{generation}"


def generation_of(key: str, build_id: str) -> int:
    """Inverse of :func:`generation_id`; other names of a key's builds (older manual
    rebuilds with a timestamp) count as generation 1."""
    if build_id == key:
        return 1
    match = re.fullmatch(re.escape(key) + r"-g(\d{1,4})", build_id)
    return int(match.group(1)) if match else 1


@dataclass(frozen=True)
class PlanDecision:
    recipe: str
    action: str
    reason: str
    detail: str = ""
    build_key: str | None = None
    base_ami: str | None = None
    previous_base_ami: str | None = None
    changes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe, "action": self.action, "reason": self.reason,
                "detail": self.detail, "build_key": self.build_key, "base_ami": self.base_ami,
                "previous_base_ami": self.previous_base_ami, "changes": list(self.changes)}


def decide(*, name: str, recipe_hash: str, base_ami: str | None, last: Mapping[str, Any] | None,
           base_problem: str | None = None, changes: tuple[str, ...] = (),
           last_build: LastBuild | None = None, policy: RetryPolicy | None = None
           ) -> PlanDecision:
    """``last``: the recipe's last build claim {last_build_key, last_hash, last_base_ami}.

    ``last_build`` (the claimed key's newest build) and ``policy`` matter only when the
    key is the claimed one: a FAILED last build is then retried under the policy.
    """
    if not base_ami:
        return PlanDecision(name, SKIP, NO_BASE, base_problem or "the base image did not resolve")
    key = build_key(name, recipe_hash, base_ami)
    last = last or {}
    if not last.get("last_build_key"):
        return PlanDecision(name, BUILD, NEVER_BUILT, f"first build on {base_ami}", key, base_ami)
    if last["last_build_key"] == key:
        built_as = last.get("last_build_id", key)
        if last_build is not None and last_build.status == "FAILED" and policy is not None:
            return _failed(name, key, base_ami, last.get("last_base_ami"), last_build, policy)
        if last_build is not None and last_build.status == "CANCELLED":
            why = f": {last_build.reason}" if last_build.reason else ""
            return PlanDecision(name, SKIP, CANCELLED,
                            f"build {last_build.build_id} was cancelled{why}; "
                            f"`amiforge build {name}` builds it again", key, base_ami,
                            last.get("last_base_ami"))
        if last_build is not None and last_build.status == "REVOKED":
            return revoked(PlanDecision(name, BUILD, "", "", key, base_ami,
                                    last.get("last_base_ami")), last_build.build_id,
                           last_build.reason)
        if last_build is not None and last_build.status in IN_FLIGHT:
            return PlanDecision(name, SKIP, BUILDING_NOW, f"building as {built_as}", key,
                            base_ami, last.get("last_base_ami"))
        return PlanDecision(name, SKIP, UP_TO_DATE, f"built as {built_as}",
                        key, base_ami, last.get("last_base_ami"))
    previous_base = last.get("last_base_ami")
    if last.get("last_hash") != recipe_hash:
        detail = ("changed: " + ", ".join(changes)) if changes else "recipe content changed"
        if previous_base and previous_base != base_ami:
            detail += f"; base also changed from {previous_base} to {base_ami}"
        return PlanDecision(name, BUILD, RECIPE_CHANGED, detail, key, base_ami, previous_base,
                        tuple(changes))
    return PlanDecision(name, BUILD, BASE_CHANGED, f"from {previous_base} to {base_ami}", key,
                    base_ami, previous_base)


def as_release(decision: PlanDecision, image_id: str, build_id: str) -> PlanDecision:
    """A build decision whose content was built before on this base and whose image still
    exists: that image is released again instead (steps/release.py)."""
    return PlanDecision(decision.recipe, RELEASE, RE_RELEASE,
                    f"re-release {image_id} built as {build_id}", decision.build_key,
                    decision.base_ami, decision.previous_base_ami, decision.changes)


def revoked(decision: PlanDecision, build_id: str, reason: str = "") -> PlanDecision:
    """A key whose build was REVOKED by ``amiforge rollback`` is not built again on its
    own (the same content on the same base would make the same image): skipped, saying
    how to bring it back or build it on purpose."""
    why = f": {reason}" if reason else ""
    return PlanDecision(decision.recipe, SKIP, REVOKED,
                    f"build {build_id} was revoked{why}; `amiforge release {build_id}` "
                    f"brings it back, `amiforge build --rebuild {decision.recipe}` builds "
                    "it again", decision.build_key, decision.base_ami,
                    decision.previous_base_ami, decision.changes)


def _failed(name: str, key: str, base_ami: str, previous_base: str | None, last: LastBuild,
            policy: RetryPolicy) -> PlanDecision:
    failed = f"failed: {last.reason or 'no reason recorded'} (build {last.build_id})"
    due = retry_due(last.failures, last.finished_at, policy)
    if due is None:
        times = "once" if last.failures == 1 else f"{last.failures} times"
        return PlanDecision(name, SKIP, FAILED,
                        f"failed {times}: fix the recipe, or `amiforge build` ({failed})",
                        key, base_ami, previous_base)
    retry = f"retry {last.failures} of {policy.limit}"
    if policy.now < due:
        return PlanDecision(name, SKIP, FAILED, f"{failed}; {retry} from {due:%Y-%m-%dT%H:%M:%SZ}",
                        key, base_ami, previous_base)
    return PlanDecision(name, BUILD, RETRY_FAILED, f"{failed}; {retry}", key, base_ami,
                    previous_base)


def document_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> tuple[str, ...]:
    """Which files and recipe fields differ between two recipe documents (sorted)."""
    if not old:
        return ()
    changes: set[str] = set()
    old_files, new_files = old.get("files") or {}, new.get("files") or {}
    # build.files travel as a manifest (path -> sha256, size): a changed one is named
    # by its path, like a script.
    old_files = {**old_files, **(old.get("assets") or {})}
    new_files = {**new_files, **(new.get("assets") or {})}
    for path in set(old_files) | set(new_files):
        if old_files.get(path) != new_files.get(path):
            changes.add(path)
    skip = {"files", "source", "hash", "format", "assets"}

    def walk(a: Any, b: Any, prefix: str) -> None:
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for key in set(a) | set(b):
                if key not in skip or prefix:
                    walk(a.get(key), b.get(key), f"{prefix}{key}.")
        elif a != b:
            changes.add(prefix.rstrip("."))

    walk(old, new, "")
    # The script text is also in build.script; name the file instead when there is one.
    if changes & set(new_files) or changes & set(old_files):
        changes.discard("build.script")
    return tuple(sorted(changes))


_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")


def schedule_period(expression: str | None) -> timedelta:
    """The period of an EventBridge ``rate(...)`` expression; a ``cron(...)`` one (whose
    period is not a constant) counts as the template's default, one hour."""
    match = _RATE.fullmatch((expression or "").strip())
    if not match:
        return timedelta(hours=1)
    unit = match.group(2).rstrip("s") + "s"
    return timedelta(**{unit: int(match.group(1))})
