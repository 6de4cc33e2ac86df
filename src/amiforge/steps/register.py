"""Step Register: the image is good. Catalog it, publish the SSM parameter, notify."""

from __future__ import annotations

from typing import Any

from amiforge.aws import messaging
from amiforge.aws import ssm as ssm_api
from amiforge.steps.env import StepEnv


def register(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    build, image = state["build"], state["image"]
    images = {env.region: image["image_id"]}
    parameter = ssm_api.put_latest(
        env.client("ssm"), build["recipe"], image["image_id"],
        description=f"amiforge: newest image of recipe {build['recipe']} "
                    f"(build {build['build_id']})",
    )
    record = env.catalog.get(build["recipe"], build["build_id"]) or {}
    env.catalog.mark_available(build["recipe"], build["build_id"],
                               created_at=record.get("created_at", ""),
                               image_id=image["image_id"], image_name=image["name"],
                               images=images, snapshot_ids=image.get("snapshot_ids", []),
                               parameters=[parameter])
    summary = {"status": "AVAILABLE", "recipe": build["recipe"], "build_id": build["build_id"],
               "image_id": image["image_id"], "image_name": image["name"], "images": images}
    messaging.notify(env.client("sns"), env.topic_arn,
                     f"amiforge: {build['recipe']} image {image['image_id']} available", summary)
    return summary
