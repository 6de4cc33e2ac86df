"""Step Register: the image (and its copies) are good. Share, catalog, publish, notify.

The order is what keeps `latest` right (design invariant 2):

1. in every region the image lives in, share it with ``image.share_with`` (launch
   permission and the snapshots' create-volume permission, which encrypted images need
   for the other account to launch them);
2. the catalog record becomes AVAILABLE with the region -> image id map (catalog first);
3. ``/amiforge/<recipe>/latest`` is made to name what
   :func:`amiforge.core.latest.choose_latest` says (:func:`~amiforge.steps.latest.
   sync_latest`), region by region (the parameter last): this build's image only if it
   is of the published recipe version and no newer build of it is AVAILABLE; then the
   winner is read again, so a build that lost a race while writing puts the winner's
   image back instead of leaving its own;
4. SNS is told.

:func:`register_and_finish` (the Register state's function) then runs Finish in the same
invocation for a build with no copies in other regions: one Lambda invocation fewer per
build. Its cleanup result rides in ``$.result.cleanup``, and the Finished? choice skips
the Finish state. A cleanup that fails there is only logged: the image is registered, and
the Finish state then runs the same idempotent cleanup with its own retries and queue. A
retried Register that finds the record AVAILABLE already (an earlier attempt died after
marking it) leaves the cleanup to Finish too: had the cleanup killed that attempt, it
would kill each retry, and the failure path would undo a good image. A build with copies
keeps the Finish state (its cleanup reaches other regions, whose time
Register's timeout should not carry).

If anything after step 2 fails, every parameter this run moved is put back (when it
still holds this build's image) and the record returns to BUILDING, so the failure path
records FAILED and removes an image that nothing names. A superseded build that finishes
late is AVAILABLE but never takes `latest`; its result says why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import messaging
from amiforge.aws import ssm as ssm_api
from amiforge.core.latest import latest_reason
from amiforge.errors import BuildFailed
from amiforge.steps.env import StepEnv
from amiforge.steps.finish import finish
from amiforge.steps.latest import Moved, published_hash, sync_latest

log = logging.getLogger(__name__)


def register_and_finish(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """Register; then, for a build without copies, Finish's cleanup as well.

    Not when this is a retry of a Register that marked the record and died: had its
    cleanup made it die (a crash, the function's timeout), every retry would die the same
    way and the failure path would undo a good image. The Finish state cleans up then."""
    summary, marked = _register(state, env)
    if state["build"].get("copies", True) or not marked:
        return summary
    try:
        return {**summary, "cleanup": finish(state, env)}
    except Exception as err:  # registered all the same: the Finish state cleans up
        log.warning("cleanup after register failed; the Finish state runs it: %s: %s",
                    type(err).__name__, err)
        return summary


def register(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    return _register(state, env)[0]


def _register(state: dict[str, Any], env: StepEnv) -> tuple[dict[str, Any], bool]:
    """Register's summary, and whether this call marked the record AVAILABLE (False: an
    earlier attempt had, and this one is its retry)."""
    build, image = state["build"], state["image"]
    recipe, build_id = build["recipe"], build["build_id"]
    images: dict[str, str] = dict((state.get("distribution") or {}).get("images")
                                  or {env.region: image["image_id"]})
    shared = {}
    for region, image_id in sorted(images.items()):
        described = ec2_api.describe_image(env.client("ec2", region), image_id)
        if described is None:
            raise BuildFailed(f"image {image_id} in {region} disappeared before registering")
        if build.get("share_with"):
            shared[region] = ec2_api.share_image(env.client("ec2", region), described,
                                                 build["share_with"])
    parameters = [ssm_api.latest_parameter_name(recipe)] if images else []
    found = env.catalog.get(recipe, build_id)
    record: Mapping[str, Any] = found if found is not None else {}
    marked = env.catalog.mark_available(
        recipe, build_id, created_at=record.get("created_at", ""),
        image_id=image["image_id"], image_name=image["name"], images=images,
        snapshot_ids=image.get("snapshot_ids", []), parameters=parameters,
        shared_with=build.get("share_with"))
    moved: list[Moved] = []
    try:
        published = published_hash(env, recipe)
        winner = env.catalog.latest(recipe, published)
        this = {**record, "build_id": build_id, "recipe_hash": build.get("recipe_hash")}
        latest = latest_reason(this, winner, published)
        sync_latest(env, recipe, winner=winner, moved=moved)
        # Read the winner again: a newer build that became AVAILABLE while this one wrote
        # may have written first; then its image goes back.
        if moved:
            sync_latest(env, recipe, moved=moved)
        summary = {"status": "AVAILABLE", "recipe": recipe, "build_id": build_id,
                   "image_id": image["image_id"], "image_name": image["name"],
                   "images": images, "shared_with": build.get("share_with", []),
                   "parameters": parameters, "latest": latest}
        messaging.notify(env.client("sns"), env.topic_arn,
                         f"amiforge: {recipe} image {image['image_id']} available", summary)
    except Exception:
        try:
            _put_back(env, recipe, build_id, moved)
        finally:
            env.catalog.unmark_available(recipe, build_id)
        raise
    return summary, marked


def _put_back(env: StepEnv, recipe: str, build_id: str, moved: list[Moved]) -> None:
    for m in reversed(moved):
        ssm_api.restore_latest(env.client("ssm", m.region), recipe, expected=m.image_id,
                               previous=m.previous,
                               description=f"amiforge: put back after build {build_id} "
                                           "could not register",
                               stack=env.stack_name or None)
