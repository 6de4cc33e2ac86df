"""Step CreateImage. Waiting for the image is :mod:`amiforge.steps.image_wait` (by event)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.core.naming import render_image_name
from amiforge.core.tags import BUILD_ID, image_tags
from amiforge.errors import BuildFailed
from amiforge.steps.build_inputs import common_tags, load_recipe
from amiforge.steps.env import StepEnv


def create_image(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    build, launch = state["build"], state["launch"]
    ec2 = env.client("ec2")
    # Idempotent: a retried CreateImage finds the image the first call made.
    existing = [i for i in ec2_api.images_tagged(ec2, BUILD_ID, build["build_id"])
                if i.get("State") not in {"deregistered", "failed"}]
    if existing:
        return {"image_id": existing[0]["ImageId"], "name": existing[0]["Name"], "polls": 0}
    recipe = load_recipe(env, build)
    name = render_image_name(recipe.image.name, recipe=recipe.name, date=datetime.now(UTC),
                             short_hash=recipe.short_hash, build_id=build["build_id"])
    taken = [i for i in ec2_api.images_named(ec2, name)
             if i.get("State") not in {"deregistered", "failed"}]
    if taken:
        # Refused before CreateImage (which would fail with a bare InvalidAMIName.Duplicate
        # after the build's work): AMI names are unique per account and region. A coarse
        # {date:...} format is the usual cause: two builds on one day.
        raise BuildFailed(
            f"image name {name!r} is already taken by {taken[0]['ImageId']} in "
            f"{env.region} (AMI names are unique per account and region)",
            hint="add {build_id}, or a finer {date:...} format, to image.name")
    description = recipe.image.description or recipe.description or f"amiforge {recipe.name}"
    image_id = ec2_api.create_image(
        ec2, instance_id=launch["instance_id"], name=name, description=description,
        tags=image_tags(common_tags(build, env), recipe.image.tags),
    )
    env.catalog.update(build["recipe"], build["build_id"], image_id=image_id, image_name=name)
    return {"image_id": image_id, "name": name, "polls": 0}
