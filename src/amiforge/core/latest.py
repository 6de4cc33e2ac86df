"""Which AVAILABLE build a recipe's `latest` names: one pure rule for every reader.

The SSM parameter ``/amiforge/<recipe>/latest``, ``amiforge latest`` and
``Custom::LatestAmi`` must answer the same image, so all three come from
:func:`choose_latest` over the same facts: the recipe's AVAILABLE builds and the hash of
its currently published version. The order is:

1. a build of the published version beats any build of another version, whatever their
   dates: a build of a superseded version that finishes late never takes `latest` from
   the version in force (and after a revert, the reverted-to version's build wins again);
2. among builds of equal standing, the one created last (the catalog's ``created_at``,
   set when the build started), then the build id, so the answer is total and stable.

"Created", not "finished": two overlapping builds of one version finish in any order,
but the one started later was started from the newer base.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

AVAILABLE = "AVAILABLE"


def rank(build: Mapping[str, Any], published_hash: str | None) -> tuple[bool, str, str]:
    return (published_hash is not None and build.get("recipe_hash") == published_hash,
            str(build.get("created_at") or ""), str(build.get("build_id") or ""))


def choose_latest(builds: Iterable[Mapping[str, Any]],
                  published_hash: str | None) -> Mapping[str, Any] | None:
    """The build `latest` names among ``builds`` (only AVAILABLE ones count), or None."""
    available = [b for b in builds if b.get("status") == AVAILABLE]
    return max(available, key=lambda b: rank(b, published_hash), default=None)


def latest_reason(candidate: Mapping[str, Any], winner: Mapping[str, Any] | None,
                  published_hash: str | None) -> str:
    """Why ``candidate`` does (or does not) name `latest`, for the build's record."""
    if winner is not None and winner.get("build_id") == candidate.get("build_id"):
        return "latest"
    if winner is None:
        return "not AVAILABLE"
    if published_hash and candidate.get("recipe_hash") != published_hash:
        return (f"superseded: recipe version {str(candidate.get('recipe_hash'))[:12]} is no "
                f"longer published; latest stays on {winner.get('build_id')}")
    return f"newer build {winner.get('build_id')} names latest"
