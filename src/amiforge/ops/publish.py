"""Publish validated recipes to the stack's recipe store, with their hash and git commit."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from amiforge.core.model import Recipe
from amiforge.core.recipes import publish_problems
from amiforge.errors import NotFound, RecipeInvalid
from amiforge.steps.env import StepEnv
from amiforge.steps.latest import sync_latest


def git_commit(path: Path) -> str | None:
    """HEAD of the git repository holding ``path`` (+"-dirty" if it has local changes)."""
    where = path if path.is_dir() else path.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=where,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if dirty else head


def publish(env: StepEnv, recipes: Sequence[Recipe], commit: str | None) -> list[dict[str, Any]]:
    """Store every recipe, or none: all are checked (base parameter allowed by the stack,
    item within DynamoDB's limit) before the first write; RecipeInvalid lists problems.
    ``revived`` says a retired one is back (publishing un-retires)."""
    problems = publish_problems(list(recipes), env.base_parameter_prefixes)
    if problems:
        raise RecipeInvalid(problems)
    results = []
    for recipe in recipes:
        previous = env.store.current(recipe.name)
        changed = env.store.publish(recipe.name, recipe.hash, recipe.to_document(), commit)
        if changed:
            # The published version decides what `latest` names (core/latest.py): content
            # built before (a revert) takes it back at once, in the SSM parameter too.
            sync_latest(env, recipe.name)
        results.append({"recipe": recipe.name, "hash": recipe.hash, "changed": changed,
                        "previous_hash": previous["hash"] if previous else None,
                        "git_commit": commit,
                        "revived": bool(previous and previous.get("retired_at"))})
    return results


def missing_from(env: StepEnv, recipes: Sequence[Recipe]) -> list[str]:
    """Published, not retired recipes that ``recipes`` (a directory's) does not hold: a
    recipe file deleted from the repository. ``publish`` warns; ``--prune`` retires them."""
    present = {r.name for r in recipes}
    return sorted(record["name"] for record in env.store.all_current()
                  if record["name"] not in present and not record.get("retired_at"))


def retire(env: StepEnv, names: Sequence[str]) -> list[dict[str, Any]]:
    """Retire the published recipes ``names`` (every name checked first): detection and
    ``amiforge build`` leave them alone; their images stay under retention and
    ``latest`` keeps answering. Publishing one again brings it back."""
    records = {name: env.store.current(name) for name in dict.fromkeys(names)}
    missing = [name for name, record in records.items() if record is None]
    if missing:
        raise NotFound(f"recipe(s) {', '.join(repr(n) for n in missing)} not published; "
                       "nothing was retired", hint="check the names with `amiforge status`")
    results = []
    for name in records:
        retired_at = env.store.retire(name)
        latest = env.catalog.latest(name) or {}
        results.append({"recipe": name, "retired_at": retired_at,
                        "latest_image": latest.get("image_id")})
    return results
