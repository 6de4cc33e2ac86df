"""The newest AVAILABLE image of a recipe: what Custom::LatestAmi and `amiforge latest` answer."""

from __future__ import annotations

from typing import Any

from amiforge.errors import NotFound
from amiforge.steps.env import StepEnv


def latest_image(env: StepEnv, recipe: str, region: str | None = None) -> dict[str, Any]:
    """One DynamoDB Query. Raises NotFound naming the recipe (and region) if there is none."""
    record = env.catalog.latest(recipe)
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
