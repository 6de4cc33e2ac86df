"""``amiforge plan``: what detection would do for the recipes in a directory, changing nothing;
``amiforge detect``: detection itself, now.

The same decision as detection (:func:`amiforge.core.plan.decide`) from the same facts:
the recipe store's claim, the base images, and the catalog's word on the claimed build
(so a failed build shows as failed, with its retry, not as up to date), and for a
content built before on the same base, the image it would release again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from amiforge.core.events import DetectEvent
from amiforge.core.hashing import build_key
from amiforge.core.model import Recipe
from amiforge.core.plan import (
    BUILD,
    RETRY_FAILED,
    PlanDecision,
    RetryPolicy,
    as_release,
    decide,
    document_changes,
    revoked,
)
from amiforge.core.rollback import revoked_build
from amiforge.steps.base import resolve_bases
from amiforge.steps.detect import claimed_builds
from amiforge.steps.detect import detect as run_detect
from amiforge.steps.env import StepEnv
from amiforge.steps.release import release_candidate


def plan(env: StepEnv, recipes: Sequence[Recipe]) -> list[PlanDecision]:
    resolved = resolve_bases(env, [r.base for r in recipes])
    claims = {recipe.name: env.store.current(recipe.name) or {} for recipe in recipes}
    claimed = []
    for recipe in recipes:
        image = resolved[recipe.base.query_key()].image_id
        current = claims[recipe.name]
        if image and current.get("last_build_key") == build_key(recipe.name, recipe.hash,
                                                                 image):
            claimed.append({"name": recipe.name, **current})
    lasts = claimed_builds(env, claimed)
    now = datetime.now(UTC)
    decisions = []
    for recipe in recipes:
        current = claims[recipe.name]
        changes: tuple[str, ...] = ()
        last_hash = current.get("last_hash")
        if last_hash and last_hash != recipe.hash:
            built = env.store.version(recipe.name, last_hash)
            changes = document_changes(built["document"] if built else None,
                                       recipe.to_document())
        base = resolved[recipe.base.query_key()]
        decision = decide(name=recipe.name, recipe_hash=recipe.hash,
                          base_ami=base.image_id, last=current,
                          base_problem=base.problem, changes=changes,
                          last_build=lasts.get(recipe.name),
                          policy=RetryPolicy(recipe.build.retry_failed, env.detect_period, now))
        if decision.action == BUILD and decision.reason != RETRY_FAILED and current.get(
                "last_build_key"):
            # Built before on this base (a revert)? Its image is released again if it exists.
            builds = env.catalog.find_key(recipe.name, decision.build_key or "")
            earlier = release_candidate(env, builds)
            if earlier is not None:
                decision = as_release(decision, earlier["image_id"], earlier["build_id"])
            elif (gone := revoked_build(builds)) is not None:  # rolled back: not rebuilt
                decision = revoked(decision, gone["build_id"], gone.get("reason") or "")
        decisions.append(decision)
    return decisions


def detect(env: StepEnv, *, trigger: str, recipes: Sequence[str] | None = None
           ) -> dict[str, Any]:
    """Run detection as the stack's schedule does (every published recipe, or only
    ``recipes``): start a build for each stale one. The step's report: ``decisions``
    (each with its ``outcome``), ``started``, ``recipes``, ``trigger``."""
    event: DetectEvent = {"trigger": trigger}
    if recipes is not None:
        event["recipes"] = list(recipes)
    return run_detect(event, env)
