"""Step Register: the image (and its copies) are good. Share, publish, catalog, notify.

In every region the image lives in: share it with ``image.share_with`` (launch permission
and the snapshots' create-volume permission, which encrypted images need for the other
account to launch them), then set ``/amiforge/<recipe>/latest`` there. The catalog record
gets the region -> image id map and becomes AVAILABLE last, so nothing points at an
image before it is ready everywhere.
"""

from __future__ import annotations

from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import messaging
from amiforge.aws import ssm as ssm_api
from amiforge.errors import BuildFailed
from amiforge.steps.env import StepEnv


def register(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    build, image = state["build"], state["image"]
    images: dict[str, str] = dict((state.get("distribution") or {}).get("images")
                                  or {env.region: image["image_id"]})
    parameters, shared = [], {}
    for region, image_id in sorted(images.items()):
        described = ec2_api.describe_image(env.client("ec2", region), image_id)
        if described is None:
            raise BuildFailed(f"image {image_id} in {region} disappeared before registering")
        if build.get("share_with"):
            shared[region] = ec2_api.share_image(env.client("ec2", region), described,
                                                 build["share_with"])
        parameters.append(ssm_api.put_latest(
            env.client("ssm", region), build["recipe"], image_id,
            description=f"amiforge: newest image of recipe {build['recipe']} "
                        f"(build {build['build_id']})"))
    record = env.catalog.get(build["recipe"], build["build_id"]) or {}
    env.catalog.mark_available(build["recipe"], build["build_id"],
                               created_at=record.get("created_at", ""),
                               image_id=image["image_id"], image_name=image["name"],
                               images=images, snapshot_ids=image.get("snapshot_ids", []),
                               parameters=parameters, shared_with=build.get("share_with"))
    summary = {"status": "AVAILABLE", "recipe": build["recipe"], "build_id": build["build_id"],
               "image_id": image["image_id"], "image_name": image["name"], "images": images,
               "shared_with": build.get("share_with", []), "parameters": parameters}
    messaging.notify(env.client("sns"), env.topic_arn,
                     f"amiforge: {build['recipe']} image {image['image_id']} available", summary)
    return summary
