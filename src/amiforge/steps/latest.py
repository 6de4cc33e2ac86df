"""The image a recipe's `latest` names: what Custom::LatestAmi and `amiforge latest` answer,
and what Register writes to ``/amiforge/<recipe>/latest``.

All three use :func:`current_latest`: the recipe's published version (one GetItem of the
recipe store) and its AVAILABLE builds (one Query on the catalog's sparse index), judged by
:func:`amiforge.core.latest.choose_latest`. :func:`latest_image` is the lookup;
:func:`sync_latest` moves the parameter to it. The custom resource that answers
CloudFormation with it is :mod:`amiforge.custom_resource.latest_ami`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from amiforge.aws import ssm as ssm_api
from amiforge.core.records import BuildRecord
from amiforge.errors import NotFound
from amiforge.steps.env import StepEnv


def published_hash(env: StepEnv, recipe: str) -> str | None:
    current = env.store.current(recipe)
    return current.get("hash") if current else None


def current_latest(env: StepEnv, recipe: str) -> BuildRecord | None:
    """The catalog record of the build `latest` names, or None."""
    return env.catalog.latest(recipe, published_hash(env, recipe))


@dataclass
class Moved:
    """One parameter :func:`sync_latest` changed: enough to put it back."""

    region: str
    previous: str | None
    image_id: str


def sync_latest(env: StepEnv, recipe: str, *, winner: Mapping[str, Any] | None = None,
                moved: list[Moved] | None = None) -> list[Moved]:
    """Make ``/amiforge/<recipe>/latest`` name what :func:`current_latest` names, in every
    region that build has an image in (``winner``: already read). ``moved`` grows as each
    parameter is set, so a caller that fails later can put them back."""
    moved = [] if moved is None else moved
    winner = winner if winner is not None else current_latest(env, recipe)
    if winner is None:
        return moved
    name = ssm_api.latest_parameter_name(recipe)
    images = winner.get("images") or {env.region: winner.get("image_id")}
    for region, image_id in sorted(images.items()):
        ssm = env.client("ssm", region)
        previous = ssm_api.get_value(ssm, name)
        if not image_id or previous == image_id:
            continue
        moved.append(Moved(region, previous, image_id))
        ssm_api.put_latest(ssm, recipe, image_id,
                           description=f"amiforge: newest image of recipe {recipe} "
                                       f"(build {winner['build_id']})",
                           stack=env.stack_name or None)
    return moved


def latest_image(env: StepEnv, recipe: str, region: str | None = None) -> dict[str, Any]:
    """Raises NotFound naming the recipe (and region) if there is none."""
    record = current_latest(env, recipe)
    if record is None:
        raise NotFound(f"recipe {recipe!r} has no AVAILABLE image in the catalog "
                       "(unknown recipe, or no build has succeeded yet)",
                       hint="check the name with `amiforge status`")
    region = region or env.region
    images = record.get("images") or {}
    image_id = images.get(region)
    if not image_id:
        raise NotFound(f"recipe {recipe!r} has no image in region {region}; it has images in: "
                       f"{', '.join(sorted(images)) or 'none'}",
                       hint="add the region to image.regions and rebuild")
    return {"ImageId": image_id, "ImageName": record.get("image_name", ""),
            "BuildId": record["build_id"], "CreationDate": record.get("created_at", ""),
            "Region": region}
