"""Step Distribute: copy the image to every region in ``image.regions``.

Runs once, after the home image is available: it starts the copies (idempotent: a copy
already tagged with this build, or the same client token, is reused), checks their
states, and tags nothing by hand: CopyImage tags the copy and its snapshots at creation. Copies are encrypted, with
the region's key from the recipe (``image.region_kms_key_ids`` / ``image.kms_key_id``).
Each copy id is recorded in the catalog as soon as it exists, so a failure path can
remove copies too. When a copy is still pending, the AwaitCopies task waits for it
(:mod:`amiforge.steps.image_wait`): no poll loop here.
"""

from __future__ import annotations

from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.core.tags import BUILD_ID, image_tags
from amiforge.errors import BuildFailed
from amiforge.steps.build_inputs import common_tags, load_recipe
from amiforge.steps.env import StepEnv

BAD_STATES = frozenset({"failed", "invalid", "deregistered", "error"})


def distribute(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    build, image = state["build"], state["image"]
    images: dict[str, str] = {env.region: image["image_id"]}
    regions = [r for r in build.get("regions", []) if r != env.region]
    recipe = load_recipe(env, build) if any(r not in images for r in regions) else None
    pending: list[str] = []
    for region in regions:
        ec2 = env.client("ec2", region)
        if region not in images:
            assert recipe is not None
            existing = [i for i in ec2_api.images_tagged(ec2, BUILD_ID, build["build_id"])
                        if i.get("State") not in BAD_STATES]
            images[region] = existing[0]["ImageId"] if existing else ec2_api.copy_image(
                ec2, source_image_id=image["image_id"], source_region=env.region,
                name=image["name"], description=f"{image['name']} (copy from {env.region})",
                kms_key_id=recipe.image.kms_key_for(region),
                tags=image_tags(common_tags(build, env), recipe.image.tags),
                client_token=f"{build['build_id']}-{region}")
            env.catalog.update(build["recipe"], build["build_id"], images=images)
        described = ec2_api.describe_image(ec2, images[region])
        current = (described or {}).get("State", "pending")  # unknown yet: still pending
        if current in BAD_STATES:
            reason = (described or {}).get("StateReason", {}).get("Message", current)
            raise BuildFailed(f"copy {images[region]} in {region} is {current}: {reason}")
        if current != "available":
            pending.append(region)
    return {"images": images, "ready": not pending, "pending": pending}
