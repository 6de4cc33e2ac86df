"""Detect: start one build for every published recipe whose build key changed, and retry
a failed key on the recipe's policy.

Cost: one Query of the recipe store's ``current`` index (GetItem per recipe when a publish
names them), one lookup per *distinct* base (SSM parameters in
batches of ten, identical image filters asked once, filters differing only in their name
pattern asked together), one BatchGetItem of the catalog per
100 recipes whose key is unchanged (is its last build done, or did it fail?), a catalog
Query per stale or failed recipe, one conditional write and one StartExecution per build
started. The AWS calls grow with the number of distinct bases, not the number of recipes.

Exactly once: the execution is named by the build key (``<key>-g<N>`` for the N-th build
of one key: a retry or a ``--rebuild``), and Step Functions runs one execution per name
(a second start answers the first, or ExecutionAlreadyExists), so starting is idempotent
and concurrent detections cannot both build. The starter then writes the build's STARTING
record (so ``status`` shows it at once) and *claims* it on the recipe item (a conditional
write), which is what makes later detections see the recipe as up to date. Start first,
claim second: a detection that dies in between (a Lambda timeout, a crash) leaves an
execution and no claim, and the next detection finds the build in the catalog (or starts
the same name again) and claims it; the other order would leave a claim with no build, and
the recipe would never be built.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from amiforge.aws import stepfunctions as sfn_api
from amiforge.aws.catalog import AVAILABLE, FAILED, IN_FLIGHT
from amiforge.core.events import DetectEvent
from amiforge.core.hashing import build_key
from amiforge.core.model import Recipe
from amiforge.core.parse import recipe_from_document
from amiforge.core.plan import (
    BUILD,
    LastBuild,
    RetryPolicy,
    as_release,
    decide,
    generation_id,
    generation_of,
    revoked,
)
from amiforge.core.rollback import revoked_build
from amiforge.errors import RecipeInvalid
from amiforge.steps.base import resolve_bases
from amiforge.steps.env import StepEnv
from amiforge.steps.release import release_candidate, rerelease

STARTED, ALREADY_STARTED, ALREADY_BUILT = "started", "already started", "already built"
RE_RELEASED = "re-released"
REVOKED_KEY = "revoked"


def detect(event: DetectEvent, env: StepEnv) -> dict[str, Any]:
    """Input (all optional): {recipes: [names] to limit to, trigger: "schedule"|"publish"|...}."""
    only = set(event.get("recipes") or [])
    trigger = event.get("trigger", "schedule")
    # Named recipes (a publish's) are read by name: consistent, so just published is seen.
    records = env.store.named(only) if only else list(env.store.all_current())
    recipes: dict[str, Recipe] = {}
    report: list[dict[str, Any]] = []
    for record in records:
        if record.get("retired_at"):
            # Retired: nothing builds it until it is published again (retention goes on).
            report.append({"recipe": record["name"], "action": "skip", "reason": "retired",
                           "detail": f"retired at {record['retired_at']}"})
            continue
        try:
            recipes[record["name"]] = recipe_from_document(record["document"])
        except RecipeInvalid as err:
            report.append({"recipe": record["name"], "action": "skip",
                           "reason": "invalid recipe", "detail": str(err)})
    resolved = resolve_bases(env, [r.base for r in recipes.values()])
    now = datetime.now(UTC)
    keys = {name: build_key(name, recipe.hash, image)
            for name, recipe in recipes.items()
            if (image := resolved[recipe.base.query_key()].image_id)}
    lasts = claimed_builds(env, [r for r in records if keys.get(r["name"])
                                 and r.get("last_build_key") == keys[r["name"]]])
    for record in records:
        recipe = recipes.get(record["name"])
        if recipe is None:
            continue  # retired or invalid: reported above
        base = resolved[recipe.base.query_key()]
        policy = RetryPolicy(recipe.build.retry_failed, env.detect_period, now)
        decision = decide(name=recipe.name, recipe_hash=recipe.hash, base_ami=base.image_id,
                          last=record, base_problem=base.problem,
                          last_build=lasts.get(recipe.name), policy=policy)
        entry = decision.as_dict()
        if decision.action == BUILD:
            build_id, outcome = start_next(env, recipe, decision.build_key or "",
                                           decision.base_ami or "", trigger, record)
            if outcome == RE_RELEASED:
                released = env.catalog.get(recipe.name, build_id)
                image_id = released.get("image_id", "") if released else ""
                entry = as_release(decision, image_id, build_id).as_dict()
            elif outcome == REVOKED_KEY:
                gone = env.catalog.get(recipe.name, build_id)
                entry = revoked(decision, build_id,
                                (gone.get("reason") if gone else None) or "").as_dict()
            entry.update(build_id=build_id, outcome=outcome)
        report.append(entry)
    started = [e for e in report if e.get("outcome") == STARTED]
    return {"trigger": trigger, "recipes": len(records), "started": len(started),
            "decisions": report}


def claimed_builds(env: StepEnv, records: Iterable[dict[str, Any]]) -> dict[str, LastBuild]:
    """The newest build of each recipe's claimed key (``records``: recipe items whose
    claim is the key they would build now), as :class:`LastBuild`; a FAILED one with the
    count of the key's failures since its last success (one catalog Query each)."""
    claims = {r["name"]: r["last_build_id"] for r in records if r.get("last_build_id")}
    found = env.catalog.get_many(claims.items())
    lasts: dict[str, LastBuild] = {}
    for name, build_id in claims.items():
        record = found.get((name, build_id))
        if record is None:
            continue  # a build from before records were written at start: done
        failures = 0
        if record.get("status") == FAILED:
            for build in sorted(env.catalog.find_key(name, record.get("build_key") or ""),
                                key=lambda b: b.get("created_at", ""), reverse=True):
                if build.get("status") == FAILED:
                    failures += 1
                elif build.get("status") == AVAILABLE:
                    break
            failures = max(failures, 1)
        lasts[name] = LastBuild(status=record.get("status", ""), build_id=build_id,
                                reason=record.get("reason") or "",
                                finished_at=_parse_time(record.get("finished_at")),
                                failures=failures)
    return lasts


def start_next(env: StepEnv, recipe: Recipe, key: str, base_ami: str, trigger: str,
               claim: dict[str, Any] | None) -> tuple[str, str]:
    """Start the next build of ``key`` (its next generation) unless one is in flight or the
    key's image is already the recipe's newest; (build id, outcome).

    ``claim``: the recipe item as the caller read it. Every concurrent caller that read
    the same state computes the same generation, hence the same execution name.
    """
    claim = claim or {}
    previous = claim.get("last_build_id") if claim.get("last_build_key") == key else None
    builds = env.catalog.find_key(recipe.name, key) if claim.get("last_build_key") else []
    if previous is None and builds:
        # The key was built before under another claim: a revert, or a detection that
        # died after its start. A build in flight, or the recipe's newest image, is the
        # build this detection wanted: claim it rather than start another.
        newest = env.catalog.latest(recipe.name)
        newest_id = newest["build_id"] if newest is not None else None
        for build in builds:
            if build.get("status") in IN_FLIGHT or (
                    build.get("status") == AVAILABLE and build["build_id"] == newest_id):
                env.store.claim(recipe.name, key, build_id=build["build_id"],
                                base_ami=base_ami, recipe_hash=recipe.hash)
                return build["build_id"], (ALREADY_BUILT if build.get("status") == AVAILABLE
                                           else ALREADY_STARTED)
        # An older image of this very content still exists: release it again, no build.
        earlier = release_candidate(env, builds)
        if earlier is not None:
            ours = rerelease(env, recipe, key, base_ami, earlier, trigger)
            if ours is not None:  # None: pruned meanwhile, so it is built again below
                return earlier["build_id"], RE_RELEASED if ours else ALREADY_BUILT
        # Revoked by `amiforge rollback`: not built again on its own. Claimed, so the
        # next detections read it as the claimed key's build and skip it (core/plan.py).
        gone = revoked_build(builds)
        if gone is not None:
            env.store.claim(recipe.name, key, build_id=gone["build_id"],
                            base_ami=base_ami, recipe_hash=recipe.hash)
            return gone["build_id"], REVOKED_KEY
    generation = max([generation_of(key, b["build_id"]) for b in builds]
                     + [generation_of(key, previous) if previous else 0]) + 1
    build_id = generation_id(key, generation)
    ours = start_and_claim(env, recipe, key, base_ami, trigger, build_id=build_id,
                           previous=previous)
    return build_id, STARTED if ours else ALREADY_STARTED


def start_and_claim(env: StepEnv, recipe: Recipe, key: str, base_ami: str,
                    trigger: str, *, build_id: str | None = None,
                    previous: str | None = None, claim: bool = True) -> bool:
    """Start the build ``build_id`` of ``key`` (default: the key itself), write its
    STARTING record, then claim it on the recipe item; True if this call started the
    build. Start first, claim second (see the module docstring). ``previous``: the build
    of the same key this one follows (a retry or a rebuild), which the claim replaces.

    StartExecution with a running execution's name and input answers that execution, and
    with another input (another trigger) or a finished one it starts nothing: of several
    callers, the one whose claim wins started the build.
    """
    build_id = build_id or key
    payload = {"recipe": recipe.name, "recipe_hash": recipe.hash, "base_ami": base_ami,
               "trigger": trigger}
    arn = sfn_api.start_build(env.client("stepfunctions"), env.state_machine_arn or "",
                              build_id, payload)
    if arn:
        env.catalog.announce({"recipe": recipe.name, "build_id": build_id, "build_key": key,
                              "recipe_hash": recipe.hash, "base_ami": base_ami,
                              "trigger": trigger, "execution_arn": arn})
    if not claim:
        return bool(arn)
    claimed = env.store.claim(recipe.name, key, build_id=build_id, base_ami=base_ami,
                              recipe_hash=recipe.hash, previous=previous)
    return bool(arn and claimed)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None
