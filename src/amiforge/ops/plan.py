"""``amiforge plan``: what detection would do for the recipes in a directory, changing nothing."""

from __future__ import annotations

from collections.abc import Sequence

from amiforge.core.model import Recipe
from amiforge.core.plan import Decision, decide, document_changes
from amiforge.steps.base import resolve_bases
from amiforge.steps.env import StepEnv


def plan(env: StepEnv, recipes: Sequence[Recipe]) -> list[Decision]:
    resolved = resolve_bases(env, [r.base for r in recipes])
    decisions = []
    for recipe in recipes:
        current = env.store.current(recipe.name) or {}
        changes: tuple[str, ...] = ()
        last_hash = current.get("last_hash")
        if last_hash and last_hash != recipe.hash:
            built = env.store.version(recipe.name, last_hash)
            changes = document_changes(built["document"] if built else None,
                                       recipe.to_document())
        base = resolved[recipe.base.query_key()]
        decisions.append(decide(name=recipe.name, recipe_hash=recipe.hash,
                                base_ami=base.image_id, last=current,
                                base_problem=base.problem, changes=changes))
    return decisions
