"""Publish validated recipes to the stack's recipe store, with their hash and git commit."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from amiforge.core.model import Recipe
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
                        "git_commit": commit})
    return results
