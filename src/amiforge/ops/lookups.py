"""Read-only lookups by recipe name: ``status``, ``history``, ``latest``.

Every command that takes a recipe name answers an unknown one the same way
(:func:`require_known`): exit 2 with one line naming it. ``history nope`` used to print
an empty table and exit 0 while ``latest nope`` exited 2; a typo now reads as a typo
everywhere. A recipe is known if it is published (retired included) or the catalog holds
builds of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amiforge.core.deletion import valid_build_id
from amiforge.core.records import BuildRecord
from amiforge.core.rules import check_recipe_name
from amiforge.core.statuses import MEANINGS
from amiforge.errors import InvalidInput, NotFound
from amiforge.steps.env import StepEnv
from amiforge.steps.latest import latest_image


def require_known(env: StepEnv, name: str) -> None:
    """Raise (exit 2) unless ``name`` is a recipe this stack knows."""
    problem = check_recipe_name(name)
    if problem:
        raise InvalidInput(problem)
    if env.store.current(name) is None and not env.catalog.history(name, limit=1):
        raise NotFound(f"recipe {name!r} is not published and has no builds",
                       hint="check the name with `amiforge status`")


def find_build(env: StepEnv, build_id: str, *,
               hint: str = "see `amiforge history RECIPE` for build ids") -> BuildRecord:
    """The catalog record ``build_id`` names (its recipe is a prefix of it, tried longest
    first); NotFound (exit 2) if there is none."""
    cuts = [i for i, char in enumerate(build_id) if char == "-"]
    for recipe in (build_id[:cut] for cut in reversed(cuts)):
        if valid_build_id(build_id, recipe):
            record = env.catalog.get(recipe, build_id)
            if record is not None:
                return record
    raise NotFound(f"{build_id!r} is not a build of this stack", hint=hint)


def history(env: StepEnv, name: str, limit: int) -> list[BuildRecord]:
    """The newest ``limit`` builds of ``name``, newest first (catalog records)."""
    require_known(env, name)
    return env.catalog.history(name, limit=limit)


def latest(env: StepEnv, name: str, region: str | None) -> dict[str, Any]:
    """The newest AVAILABLE image of ``name`` (in ``region``), as Custom::LatestAmi sees it.

    The answer stays one catalog Query; only a miss asks whether the name is known, so
    that an unknown recipe reads as one."""
    problem = check_recipe_name(name)
    if problem:
        raise InvalidInput(problem)
    try:
        return latest_image(env, name, region)
    except NotFound:
        require_known(env, name)
        raise


def _last_build_text(last: Mapping[str, Any]) -> str:
    """"failed: <reason> (build …)" for a failure; the status and build id otherwise."""
    if not last:
        return "never built"
    if last.get("status") == "FAILED":
        return f"failed: {last.get('reason') or 'no reason recorded'} (build {last['build_id']})"
    if last.get("status") == "AWAITING_APPROVAL":
        return (f"AWAITING_APPROVAL ({last['build_id']}): `amiforge approve "
                f"{last['build_id']}` or `amiforge reject {last['build_id']} --reason TEXT`")
    return f"{last.get('status')} ({last['build_id']})"


def status(env: StepEnv) -> list[dict[str, Any]]:
    """Every published recipe with its newest build and its newest available image."""
    rows = []
    for record in sorted(env.store.all_current(), key=lambda r: r["name"]):
        name = record["name"]
        builds = env.catalog.history(name, limit=1)
        last: Mapping[str, Any] = builds[0] if builds else {}
        chosen = env.catalog.latest(name, record["hash"])
        newest: Mapping[str, Any] = chosen if chosen is not None else {}
        rows.append({
            "recipe": name, "hash": record["hash"], "last_build": last.get("build_id"),
            "retired_at": record.get("retired_at"),
            "last_status": last.get("status"), "latest_image": newest.get("image_id"),
            "reason": last.get("reason"), "execution_arn": last.get("execution_arn"),
            "last_status_meaning": MEANINGS.get(last.get("status") or ""),
            "summary": (f"retired ({record['retired_at']})" if record.get("retired_at")
                        else _last_build_text(last))})
    return rows
