"""Re-release: publishing content that was built before on the same base brings that
image back as the recipe's newest, without a build (a ``git revert`` takes effect).

The earlier build stays the owner of its image (its tags name it, so cleanup, sweep and
retention keep treating it as one AVAILABLE build). What moves is its place in the
catalog's ``available`` index, whose sort key is ``created_at``: the record's
``created_at`` becomes the re-release time and the original is kept as ``built_at``, so
``amiforge latest`` and ``Custom::LatestAmi`` answer it; then, as Register does, the SSM
parameter moves last, in every region the image lives in. Finally the build key is
claimed for it, conditionally: only the claim's winner notifies. A detection killed
before its claim leaves a re-release that the next detection makes again (each write
is an overwrite), never a claim without a release.

If the image is gone (pruned), there is nothing to release: the key is built again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import messaging
from amiforge.aws import ssm as ssm_api
from amiforge.aws.catalog import AVAILABLE, now_iso
from amiforge.core.model import Recipe
from amiforge.steps.env import StepEnv


def release_candidate(env: StepEnv,
                      builds: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest AVAILABLE build among ``builds`` (one key's) whose image still exists in
    the home region; None if there is none (the key must be built again)."""
    available = sorted((b for b in builds if b.get("status") == AVAILABLE and b.get("image_id")),
                       key=lambda b: b.get("created_at", ""), reverse=True)
    for build in available:
        images = build.get("images") or {env.region: build["image_id"]}
        home = images.get(env.region, build["image_id"])
        if ec2_api.describe_image(env.client("ec2"), home) is not None:
            return build
    return None


def rerelease(env: StepEnv, recipe: Recipe, key: str, base_ami: str,
              build: Mapping[str, Any], trigger: str) -> bool | None:
    """Make ``build`` (an AVAILABLE build of ``key``) the recipe's newest image again;
    True if this call's claim won (it then notifies). None if the build is no longer
    AVAILABLE (retention pruned it since it was read): nothing moved, the caller builds."""
    name, build_id = recipe.name, build["build_id"]
    images: dict[str, str] = dict(build.get("images") or {env.region: build["image_id"]})
    if not env.catalog.update(name, build_id, only_if_status=AVAILABLE, created_at=now_iso(),
                              built_at=build.get("built_at") or build.get("created_at"),
                              released_at=now_iso(), release_trigger=trigger):
        return None
    for region, image_id in sorted(images.items()):
        ssm_api.put_latest(env.client("ssm", region), name, image_id,
                           description=f"amiforge: newest image of recipe {name} "
                                       f"(build {build_id}, re-released)",
                           stack=env.stack_name or None)
    claimed = env.store.claim(name, key, build_id=build_id, base_ami=base_ami,
                              recipe_hash=recipe.hash)
    if claimed:
        messaging.notify(env.client("sns"), env.topic_arn,
                         f"amiforge: {name} image {build['image_id']} re-released",
                         {"status": "AVAILABLE", "recipe": name, "build_id": build_id,
                          "image_id": build["image_id"], "images": images,
                          "re_released": True, "trigger": trigger})
    return claimed
