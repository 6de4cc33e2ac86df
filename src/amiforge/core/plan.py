"""Plan: from what is (recipe hash, current base image, last build claim) to what to do.

Pure functions. ``amiforge plan`` shows these decisions; the detect function acts on them.
A build key is (recipe hash, base AMI): a recipe is stale exactly when the key of its
current version on its current base differs from the key of its last build.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from amiforge.core.hashing import build_key

BUILD, SKIP = "build", "skip"
NEVER_BUILT = "never built"
RECIPE_CHANGED = "recipe changed"
BASE_CHANGED = "base changed"
UP_TO_DATE = "up to date"
NO_BASE = "base not found"


@dataclass(frozen=True)
class Decision:
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
           base_problem: str | None = None, changes: tuple[str, ...] = ()) -> Decision:
    """``last``: the recipe's last build claim {last_build_key, last_hash, last_base_ami}."""
    if not base_ami:
        return Decision(name, SKIP, NO_BASE, base_problem or "the base image did not resolve")
    key = build_key(name, recipe_hash, base_ami)
    last = last or {}
    if not last.get("last_build_key"):
        return Decision(name, BUILD, NEVER_BUILT, f"first build on {base_ami}", key, base_ami)
    if last["last_build_key"] == key:
        return Decision(name, SKIP, UP_TO_DATE, f"built as {last.get('last_build_id', key)}",
                        key, base_ami, last.get("last_base_ami"))
    previous_base = last.get("last_base_ami")
    if last.get("last_hash") != recipe_hash:
        detail = ("changed: " + ", ".join(changes)) if changes else "recipe content changed"
        if previous_base and previous_base != base_ami:
            detail += f"; base also changed from {previous_base} to {base_ami}"
        return Decision(name, BUILD, RECIPE_CHANGED, detail, key, base_ami, previous_base,
                        tuple(changes))
    return Decision(name, BUILD, BASE_CHANGED, f"from {previous_base} to {base_ami}", key,
                    base_ami, previous_base)


def document_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> tuple[str, ...]:
    """Which files and recipe fields differ between two recipe documents (sorted)."""
    if not old:
        return ()
    changes: set[str] = set()
    old_files, new_files = old.get("files") or {}, new.get("files") or {}
    for path in set(old_files) | set(new_files):
        if old_files.get(path) != new_files.get(path):
            changes.add(path)
    skip = {"files", "source", "hash", "format"}

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
