"""The image a recipe's `latest` names: what Custom::LatestAmi and `amiforge latest` answer,
and what Register writes to ``/amiforge/<recipe>/latest``.

All three use :func:`current_latest`: the recipe's published version (one GetItem of the
recipe store) and its AVAILABLE builds (one Query on the catalog's sparse index), judged by
:func:`amiforge.core.latest.choose_latest`. :func:`latest_image` is the lookup.
:func:`latest_ami_resource` is ``Custom::LatestAmi``: its properties checked, the lookup
made, the attributes returned; :func:`respond` answers a CloudFormation request for it
(the protocol, malformed events and the 4 KB limit are :mod:`amiforge.steps.custom_resource`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amiforge.aws import ssm as ssm_api
from amiforge.core.rules import REGION, check_recipe_name
from amiforge.errors import InvalidInput, NotFound
from amiforge.steps import custom_resource
from amiforge.steps.custom_resource import shown
from amiforge.steps.env import StepEnv

RESOURCE = "Custom::LatestAmi"
ATTRIBUTES = ("ImageId", "ImageName", "BuildId", "CreationDate")


def published_hash(env: StepEnv, recipe: str) -> str | None:
    current = env.store.current(recipe)
    return current.get("hash") if current else None


def current_latest(env: StepEnv, recipe: str) -> dict[str, Any] | None:
    """The catalog record of the build `latest` names, or None."""
    return env.catalog.latest(recipe, published_hash(env, recipe))


@dataclass
class Moved:
    """One parameter :func:`sync_latest` changed: enough to put it back."""

    region: str
    previous: str | None
    image_id: str


def sync_latest(env: StepEnv, recipe: str, *, winner: dict[str, Any] | None = None,
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


def latest_ami_resource(properties: dict[str, Any], env: StepEnv) -> tuple[str, dict[str, Any]]:
    """Create/Update of a Custom::LatestAmi: (physical id = the AMI id, attributes).

    ``Recipe`` is required, ``Region`` optional (default: the stack's region); other
    properties are ignored, so a consumer can add one (a date) to force a re-resolve.
    """
    recipe = properties.get("Recipe")
    if not isinstance(recipe, str) or not recipe:
        raise InvalidInput(f"{RESOURCE} needs the property Recipe, the name of an amiforge "
                           f"recipe (a string); got {shown(recipe)}")
    problem = check_recipe_name(recipe)
    if problem:
        raise InvalidInput(f"{RESOURCE} property Recipe: {problem}")
    region = properties.get("Region")
    if region == "":
        region = None
    if region is not None and not (isinstance(region, str) and REGION.fullmatch(region)):
        raise InvalidInput(f"{RESOURCE} property Region: {shown(region)} is not an AWS region "
                           "(like eu-west-1); leave it out for the stack's own region")
    image = latest_image(env, recipe, region)
    return image["ImageId"], {key: image[key] for key in ATTRIBUTES}


def respond(event: Any, env: StepEnv, *, seconds_left: float | None = None) -> dict[str, Any]:
    """Answer one CloudFormation request for a Custom::LatestAmi; Delete touches nothing."""
    return custom_resource.respond(event, lambda properties: latest_ami_resource(properties, env),
                                   seconds_left=seconds_left)
