"""The one deletion gate: may this image (or snapshot) be removed? Pure: facts in, verdict out.

Every path that deregisters an image or deletes a snapshot (the build's own cleanup and
the cleanup queue in ``steps/cleanup.py``, RecordFailure, the sweeper, retention) first
gathers the facts about the resource and asks :func:`decide_image` /
:func:`decide_snapshot`. Only a :class:`Verdict` with ``delete`` set may be handed to the
executor (``aws/deletion.py``), which is the only code that calls ``DeregisterImage`` or
``DeleteSnapshot`` (a test over ``src/`` holds that).

An image is deleted only if all of these hold, checked in this order so the reason a
user reads is the most fundamental one:

1. this stack made it: its tags name exactly the recipe and build the caller is cleaning,
   the build has a record in this stack's catalog, and a stack tag, if the image carries
   one, names this stack; and the build is over (a live build's image is never removed,
   whatever a message says: the failure path and the sweeper record FAILED first);
2. ``latest`` does not name it in any region;
3. its build is not AVAILABLE with this image among the build's images, unless retention
   chose it (an AVAILABLE build's stray image, e.g. a tagged copy, is not "its image");
4. it is not in use, and its use is known: a use that could not be read (access denied,
   throttled past retries, an unreachable region) counts as a use.

A snapshot is deleted only if this stack made it (1.) and no image that is kept still
stands on it. A builder instance is terminated by a cleanup only if this stack made it
(1., and tagged ``amiforge:role=builder``) and its build is over, or AWAITING_APPROVAL
(its image is made: the approval gate lets the builder go before a wait of days, while the
image stays, since that build is not over): whatever a message says, a running build's
builder is never touched.

The validators :func:`valid_build_id` and :func:`valid_recipe_name` are what every AWS
filter built from input must pass first: exact formats, so a value can never be a
pattern (EC2 tag filters treat ``*`` and ``?`` as wildcards).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

KEEP, DELETE = "keep", "delete"
AVAILABLE = "AVAILABLE"
# A build in one of these has ended: its builders may go.
OVER_STATUSES = frozenset({"AVAILABLE", "FAILED", "PRUNED", "CANCELLED"})
ROLE_TAG, BUILDER, TESTER = "amiforge:role", "builder", "tester"
RECIPE_TAG, BUILD_TAG, STACK_TAG = "amiforge:recipe", "amiforge:build-id", "amiforge:stack"

RECIPE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
# <recipe>-<20 hex> (core/hashing.build_key), optionally one suffix of letters and digits
# (a manual build adds its start time: -YYYYMMDDTHHMMSS). No character EC2 filters or
# Step Functions treat specially can pass.
_KEY_TAIL = re.compile(r"-[0-9a-f]{20}(-[0-9A-Za-z]{1,20})?")
BUILD_ID_MAX = 80


def valid_recipe_name(name: object) -> bool:
    return isinstance(name, str) and RECIPE_NAME.fullmatch(name) is not None


def valid_build_id(build_id: object, recipe: str | None = None) -> bool:
    """True if ``build_id`` has the exact format of a build id (of ``recipe`` if given)."""
    if not isinstance(build_id, str) or not 0 < len(build_id) <= BUILD_ID_MAX:
        return False
    if recipe is not None:
        return (valid_recipe_name(recipe) and build_id.startswith(recipe + "-")
                and _KEY_TAIL.fullmatch(build_id[len(recipe):]) is not None)
    cuts = [i for i, char in enumerate(build_id) if char == "-"]
    return any(valid_build_id(build_id, build_id[:cut]) for cut in cuts)


@dataclass(frozen=True)
class Owner:
    """Who the caller is cleaning for: the build it believes the resource belongs to."""

    recipe: str
    build_id: str
    stack: str | None = None          # this stack's name, checked against a stack tag


@dataclass(frozen=True)
class ImageFacts:
    image_id: str
    region: str
    tags: Mapping[str, str]
    owner: Owner
    record_status: str | None                 # None: no catalog record of the owner's build
    record_images: Collection[str] = ()       # the image ids the record lists
    latest: Mapping[str, str | None] = field(default_factory=dict)  # region -> latest's id
    retention_chose: bool = False
    uses: Collection[str] = ()                # where it is used
    use_unknown: str | None = None            # why its use could not be read


@dataclass(frozen=True)
class SnapshotFacts:
    snapshot_id: str
    region: str
    tags: Mapping[str, str]
    owner: Owner
    record_status: str | None
    held_by: Collection[str] = ()             # kept images (same region) that use it


@dataclass(frozen=True)
class InstanceFacts:
    instance_id: str
    tags: Mapping[str, str]
    owner: Owner
    record_status: str | None


@dataclass(frozen=True)
class Verdict:
    action: str            # keep | delete
    reason: str
    resource: str = ""
    region: str = ""

    @property
    def delete(self) -> bool:
        return self.action == DELETE


# A builder's work is over once its image exists: at the approval gate (AWAITING_APPROVAL)
# its builder may go, while the build (and its image) lives on.
BUILDER_DONE_STATUSES = OVER_STATUSES | {"AWAITING_APPROVAL"}


def _not_ours(tags: Mapping[str, str], owner: Owner, record_status: str | None,
              ended: Collection[str] = OVER_STATUSES) -> str | None:
    if not valid_recipe_name(owner.recipe) or not valid_build_id(owner.build_id, owner.recipe):
        return (f"not a valid recipe/build id ({owner.recipe!r}, {owner.build_id!r}): "
                "nothing is matched by pattern")
    if tags.get(RECIPE_TAG) != owner.recipe or tags.get(BUILD_TAG) != owner.build_id:
        return (f"its tags (recipe {tags.get(RECIPE_TAG)!r}, build "
                f"{tags.get(BUILD_TAG)!r}) are not exactly build {owner.build_id} of "
                f"{owner.recipe}")
    if owner.stack and tags.get(STACK_TAG) not in (None, owner.stack):
        return f"made by stack {tags.get(STACK_TAG)!r}, not {owner.stack!r}"
    if record_status is None:
        return f"build {owner.build_id} is not in this stack's catalog"
    if record_status not in ended:
        return f"build {owner.build_id} is {record_status}: only an ended build's are removed"
    return None


def decide_image(facts: ImageFacts, reason: str) -> Verdict:
    """Keep or delete one image; ``reason`` is why the caller wants it gone."""
    def keep(why: str) -> Verdict:
        return Verdict(KEEP, why, facts.image_id, facts.region)

    if (why := _not_ours(facts.tags, facts.owner, facts.record_status)) is not None:
        return keep(why)
    named = sorted(region for region, image in facts.latest.items() if image == facts.image_id)
    if named:
        return keep(f"latest names it in {', '.join(named)}")
    if (facts.record_status == AVAILABLE and facts.image_id in set(facts.record_images)
            and not facts.retention_chose):
        return keep("an image of an AVAILABLE build (only retention removes those)")
    if facts.uses:
        return keep("in use: " + ", ".join(sorted(facts.uses)))
    if facts.use_unknown:
        return keep(f"use unknown ({facts.use_unknown})")
    return Verdict(DELETE, reason, facts.image_id, facts.region)


def decide_snapshot(facts: SnapshotFacts, reason: str) -> Verdict:
    def keep(why: str) -> Verdict:
        return Verdict(KEEP, why, facts.snapshot_id, facts.region)

    if (why := _not_ours(facts.tags, facts.owner, facts.record_status)) is not None:
        return keep(why)
    if facts.held_by:
        return keep("a kept image uses it: " + ", ".join(sorted(facts.held_by)))
    return Verdict(DELETE, reason, facts.snapshot_id, facts.region)


def decide_instance(facts: InstanceFacts, reason: str) -> Verdict:
    """Terminate a builder of an ended build, or of one awaiting approval (its image is
    made); keep anything else."""
    def keep(why: str) -> Verdict:
        return Verdict(KEEP, why, facts.instance_id)

    if (why := _not_ours(facts.tags, facts.owner, facts.record_status,
                         BUILDER_DONE_STATUSES)) is not None:
        return keep(why)
    if facts.tags.get(ROLE_TAG) not in (BUILDER, TESTER):
        return keep("not a builder or tester")
    return Verdict(DELETE, reason, facts.instance_id)


def decide_tester(facts: InstanceFacts, reason: str) -> Verdict:
    """Terminate a tester once the test phase has judged it, while its build still runs.

    A tester is disposable: it only ever runs the recipe's test on the build's own image,
    and the build's verdict is already read from its console. It must still be exactly
    this build's (tags, stack, a catalog record) and tagged ``amiforge:role=tester``:
    never a builder, never another build's instance."""
    def keep(why: str) -> Verdict:
        return Verdict(KEEP, why, facts.instance_id)

    status = facts.record_status
    if (why := _not_ours(facts.tags, facts.owner, "FAILED" if status else None)) is not None:
        return keep(why)
    if facts.tags.get(ROLE_TAG) != TESTER:
        return keep("not a tester")
    return Verdict(DELETE, reason, facts.instance_id)
