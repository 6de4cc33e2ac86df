"""``amiforge retire --purge``: a retired recipe's images that nothing uses, and its
``latest`` parameters, go.

Order matters. The ``/amiforge/<recipe>/latest`` parameters are deleted first, in every
region the recipe published to: while one names an image, the deletion gate keeps that
image (``latest`` names it), and the in-use scan would count the parameter as a use.
Then retention runs for these recipes with the purging policy (keep none, not even the
newest) through the same deletion gate as ever: an image something still runs, or whose
use cannot be read, is kept with the reason; the rest is deregistered with its snapshots
and its record becomes PRUNED. A recipe is retired first if it was not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from amiforge.aws import ssm as ssm_api
from amiforge.core.parse import recipe_from_document
from amiforge.errors import NotFound
from amiforge.ops.publish import retire
from amiforge.steps import prune as prune_step
from amiforge.steps.env import StepEnv


def purge(env: StepEnv, names: Sequence[str]) -> list[dict[str, Any]]:
    """Retire (if needed) and purge ``names``; every name is checked first."""
    names = list(dict.fromkeys(names))
    records = {name: env.store.current(name) for name in names}
    missing = [name for name, record in records.items() if record is None]
    if missing:
        raise NotFound(f"recipe(s) {', '.join(repr(n) for n in missing)} not published; "
                       "nothing was purged", hint="check the names with `amiforge status`")
    retire(env, [n for n, r in records.items() if not (r or {}).get("retired_at")])
    deleted: dict[str, list[str]] = {}
    for name, record in records.items():
        deleted[name] = [region for region in _regions(env, name, record or {})
                         if ssm_api.delete_latest(env.client("ssm", region), name)]
    report = prune_step.prune({"recipes": names}, env, purge=names)
    results = []
    for name in names:
        decisions = [d for d in report["decisions"] if d["recipe"] == name]
        results.append({
            "recipe": name,
            "parameters_deleted": deleted[name],
            "pruned": [d["image_id"] for d in decisions if d["outcome"] == "pruned"],
            "kept": [{"image_id": d["image_id"], "reason": d["reason"]}
                     for d in decisions if d["outcome"] != "pruned"],
        })
    return results


def _regions(env: StepEnv, name: str, record: dict[str, Any]) -> list[str]:
    """Home, the recipe's copy regions, and every region the catalog has its images in."""
    regions = [env.region]
    with contextlib.suppress(Exception):  # an unreadable document: the catalog's regions
        regions += list(recipe_from_document(record["document"]).image.regions)
    for build in env.catalog.history(name):
        regions += list((build.get("images") or {}).keys())
    return list(dict.fromkeys(regions))
