"""Retention: which images of a recipe to keep, prune or deprecate. Pure: no I/O.

:func:`plan_recipe` takes what is (the recipe's catalog builds, its retention settings,
the time, and the images something still uses) and returns what to do: one
:class:`RetentionDecision` per AVAILABLE build, each with the reason. ``amiforge prune --dry-run``
prints these decisions; ``amiforge prune`` and the scheduled Prune function carry them
out (``steps/prune.py``), so a dry run shows exactly what a real run does.

The rules, for the AVAILABLE builds of one recipe, newest first (``created_at``):

1. The newest AVAILABLE image is kept: it is what ``/amiforge/<recipe>/latest`` and
   ``Custom::LatestAmi`` hand out.
2. An image in use (an instance in any state but terminated, a launch template's default
   or latest version, an Auto Scaling group, a launch configuration, an SSM parameter) is
   kept, however old. A build counts as in use if any of its regional copies is.
3. The ``keep`` newest AVAILABLE images are kept whatever their age.
4. Beyond those, an image older than ``max_age_days`` is pruned. With ``max_age_days``
   null there is no age floor: every image beyond the ``keep`` newest is pruned.
5. Otherwise (beyond ``keep`` but not old enough) it is kept.

A rollback target (the build ``amiforge rollback`` moved `latest` back to, named by a
REVOKED build's ``rolled_back_to``) is kept whatever ``keep`` and ``max_age_days`` say,
until the revoked build is released (``core/rollback.py``); REVOKED builds are not
AVAILABLE, so retention never prunes them (their image stays for ``amiforge release``).

Deprecation (``image.deprecate_after_days``) applies to kept images only, never to the
newest: such an image gets the EC2 deprecation time ``created + N days`` (it still
launches, and launch templates, Auto Scaling groups and SSM parameters keep working, but
it drops out of default listings). EC2 refuses a time in the past, so an image already
older than that is deprecated a minute from now. A build whose catalog record already
carries that deprecation time needs nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from amiforge.core.rollback import rollback_targets
from amiforge.core.statuses import BuildStatus

KEEP, PRUNE, DEPRECATE = "keep", "prune", "deprecate"
AVAILABLE = BuildStatus.AVAILABLE
_MAX_USES_SHOWN = 3


@dataclass(frozen=True)
class RetentionPolicy:
    """A recipe's ``retention`` plus ``image.deprecate_after_days``."""

    keep: int = 5
    max_age_days: int | None = 90
    deprecate_after_days: int | None = None
    # ``amiforge retire --purge``: every image goes, the newest too (its ``latest``
    # parameters are deleted first); only images in use are kept.
    purge: bool = False

    @classmethod
    def purging(cls) -> RetentionPolicy:
        return cls(keep=0, max_age_days=None, deprecate_after_days=None, purge=True)

    @classmethod
    def of(cls, recipe: Any) -> RetentionPolicy:
        """From a :class:`~amiforge.core.model.Recipe` (duck-typed: no import cycle)."""
        return cls(keep=recipe.retention.keep, max_age_days=recipe.retention.max_age_days,
                   deprecate_after_days=recipe.image.deprecate_after_days)


@dataclass(frozen=True)
class RetentionDecision:
    """What to do with one build's image (all its regional copies), and why."""

    recipe: str
    build_id: str
    image_id: str
    action: str                      # keep | prune | deprecate
    reason: str
    created_at: str
    images: Mapping[str, str] = field(default_factory=dict)   # region -> image id
    deprecate_at: str | None = None  # ISO time, for action "deprecate"

    def as_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe, "build_id": self.build_id, "image_id": self.image_id,
                "action": self.action, "reason": self.reason, "created_at": self.created_at,
                "images": dict(self.images), "deprecate_at": self.deprecate_at}


def parse_time(text: str) -> datetime:
    """An ISO-8601 time as the catalog writes it (``...Z``), timezone-aware."""
    when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _uses(in_use: Mapping[str, Collection[str]] | Collection[str]) -> dict[str, list[str]]:
    if isinstance(in_use, Mapping):
        return {image: sorted(set(where)) for image, where in in_use.items()}
    return {image: [] for image in in_use}


def _images_of(build: Mapping[str, Any]) -> dict[str, str]:
    return {str(region): str(image) for region, image in (build.get("images") or {}).items()
            if image}


def _use_reason(ids: Iterable[str], uses: Mapping[str, list[str]]) -> str | None:
    found = [where for image in ids if image in uses for where in (uses[image] or [image])]
    if not any(image in uses for image in ids):
        return None
    shown = ", ".join(found[:_MAX_USES_SHOWN])
    more = len(found) - _MAX_USES_SHOWN
    return f"in use: {shown}" + (f" and {more} more" if more > 0 else "")


def _days(delta: timedelta) -> int:
    return int(delta.total_seconds() // 86400)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _deprecation(build: Mapping[str, Any], created: datetime, policy: RetentionPolicy,
                 now: datetime) -> str | None:
    """The deprecation time to set now, or None if nothing is to be done."""
    if not policy.deprecate_after_days:
        return None
    # Whole minutes: EC2 rounds a deprecation time to the minute.
    target = (created + timedelta(days=policy.deprecate_after_days)).replace(second=0,
                                                                              microsecond=0)
    recorded = build.get("deprecate_at")
    if recorded:
        recorded_at = parse_time(recorded)
        # Already set to the target, or already in force: nothing to change. A target
        # moved into the future (the setting grew) is applied again.
        if abs(recorded_at - target) < timedelta(minutes=1) or (
                recorded_at <= now and target <= now):
            return None
    if target <= now:
        # EC2 refuses a time in the past: deprecate on the next whole minute.
        target = (now + timedelta(minutes=2)).replace(second=0, microsecond=0)
    return iso(target)


def plan_recipe(recipe: str, builds: Sequence[Mapping[str, Any]], policy: RetentionPolicy,
                *, now: datetime,
                in_use: Mapping[str, Collection[str]] | Collection[str] = ()) -> list[RetentionDecision]:
    """Decide keep / prune / deprecate for every AVAILABLE build of ``recipe``.

    ``builds`` are catalog records (any status; only AVAILABLE ones with an image are
    considered). ``in_use`` is the set of image ids in use, or a mapping from image id to
    where it is used (which then appears in the reason). Decisions come newest first.
    """
    uses = _uses(in_use)
    targets = rollback_targets(builds)
    available = [b for b in builds if b.get("status") == AVAILABLE and b.get("image_id")]
    available.sort(key=lambda b: (parse_time(b["created_at"]), b["build_id"]), reverse=True)
    decisions: list[RetentionDecision] = []
    for rank, build in enumerate(available):
        created = parse_time(build["created_at"])
        age = _days(now - created)
        images = _images_of(build)
        ids = sorted({build["image_id"], *images.values()})
        used = _use_reason(ids, uses)
        if rank == 0 and not policy.purge:
            action, reason = KEEP, "newest available image"
        elif used:
            action, reason = KEEP, used
        elif policy.purge:
            action, reason = PRUNE, "recipe retired and purged (amiforge retire --purge)"
        elif build["build_id"] in targets:
            action, reason = KEEP, ("rollback target of REVOKED build(s) "
                                    f"{', '.join(targets[build['build_id']])}")
        elif rank < policy.keep:
            action, reason = KEEP, f"one of the {_plural(policy.keep, 'newest image')}"
        elif policy.max_age_days is None:
            action, reason = PRUNE, (f"not one of the {_plural(policy.keep, 'newest image')}"
                                     " (no max_age_days)")
        elif age > policy.max_age_days:
            action, reason = PRUNE, (f"{_plural(age, 'day')} old, older than "
                                     f"max_age_days {policy.max_age_days}, and not one of "
                                     f"the {_plural(policy.keep, 'newest image')}")
        else:
            action, reason = KEEP, (f"{_plural(age, 'day')} old, within max_age_days "
                                    f"{policy.max_age_days}")
        deprecate_at = None
        if action == KEEP and rank > 0:
            deprecate_at = _deprecation(build, created, policy, now)
            if deprecate_at:
                action = DEPRECATE
                reason += (f"; deprecate at {deprecate_at} (deprecate_after_days "
                           f"{policy.deprecate_after_days})")
        decisions.append(RetentionDecision(recipe=recipe, build_id=build["build_id"],
                                  image_id=build["image_id"], action=action, reason=reason,
                                  created_at=build["created_at"], images=images,
                                  deprecate_at=deprecate_at))
    return decisions
