"""Steps RollOut and AwaitRefresh: the released image goes to the fleet.

RollOut runs after Register and Finish (the image is AVAILABLE and `latest`, the builder
gone), for a recipe with ``release.launch_templates`` (``build.rolls_out`` says so, set
by Resolve):

1. each listed launch template, in each region the entry names (every region the image
   is in, by default), gets a new version copied from its default with only ``ImageId``
   changed, and that version becomes the default, when
   :func:`amiforge.core.rollout.decide_template` says it may move; a template it may not
   move is skipped, and the reason logged and recorded (``rollout.skipped``);
2. the versions made are recorded on the build (``rollout.templates``: template, region,
   the version made and the one that was default before), so a rollback can point each
   template back; if a move fails half way, the templates moved so far are put back
   before the error reaches the state machine (which then rolls the release back);
3. each listed Auto Scaling group whose launch template was moved starts an instance
   refresh onto the new version, with automatic rollback
   (:func:`amiforge.core.rollout.refresh_request`). A start that fails rolls back the
   refreshes started and puts the templates back, as in 2.

A build that does not name `latest` (a newer build won meanwhile) rolls nothing out.

AwaitRefresh then waits for the refreshes by event, with a periodic check for lost events
and other regions (``steps/refresh_wait.py``), for at most ``timeout_seconds``. A refresh
that fails, is cancelled or is rolled back by AWS, or runs past the timeout (then
amiforge rolls it back itself), makes the outcome ``failed``: the state machine goes on
to RollBackRelease (``steps/rollout_back.py``).
"""

from __future__ import annotations

import logging
from typing import Any

from amiforge.aws import autoscaling as asg_api
from amiforge.aws import ec2 as ec2_api
from amiforge.aws import launch_templates as lt_api
from amiforge.core.rollout import (
    decide_template,
    permits,
    refresh_request,
    regions_of,
)
from amiforge.steps.build_inputs import load_recipe
from amiforge.steps.env import StepEnv
from amiforge.steps.rollout_back import revert_templates

log = logging.getLogger(__name__)
# How long a refresh may run before amiforge rolls it back (recipe minutes: the local
# cloud's scaled minute makes this seconds there).
REFRESH_TIMEOUT_MINUTES = 360


def roll_out(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    build = state["build"]
    recipe_name, build_id = build["recipe"], build["build_id"]
    result = state.get("result") or {}
    images: dict[str, str] = dict(result.get("images") or {})
    rollout: dict[str, Any] = {
        "outcome": "succeeded", "templates": [], "skipped": [], "refreshes": [],
        "timeout_seconds": max(1, REFRESH_TIMEOUT_MINUTES * env.seconds_per_minute)}
    if result.get("latest") != "latest":
        rollout["skipped"].append({"what": "rollout", "reason": f"this build does not name "
                                   f"latest ({result.get('latest')})"})
        _record(env, recipe_name, build_id, rollout)
        return rollout
    release = load_recipe(env, build).release
    moved: list[dict[str, Any]] = rollout["templates"]
    try:
        for target in release.launch_templates:
            for region in _regions(target.region, images):
                _move_template(env, target, recipe_name, build_id, region, images, rollout)
        for refresh in release.instance_refresh:
            for region in _regions(refresh.region, images):
                _start_refresh(env, refresh, region, moved, rollout)
    except Exception:
        # Nothing half done is left for RollBackRelease to guess at: the refreshes
        # started are rolled back and the templates moved put back, then the error goes
        # on (the state machine rolls the release back).
        for started in rollout["refreshes"]:
            asg_api.roll_back(env.client("autoscaling", started["region"]),
                              started["auto_scaling_group"])
        revert_templates(env, moved)
        raise
    rollout["outcome"] = "running" if rollout["refreshes"] else "succeeded"
    _record(env, recipe_name, build_id, rollout)
    return rollout


def _regions(region: str | None, images: dict[str, str]) -> list[str]:
    # An entry's own region without a copy there is still reported (skipped, and why).
    return regions_of(region, images) or ([region] if region else [])


def _skip(rollout: dict[str, Any], what: str, region: str, reason: str) -> None:
    log.warning("rollout: %s in %s skipped: %s", what, region, reason)
    rollout["skipped"].append({"what": what, "region": region, "reason": reason})


def _move_template(env: StepEnv, target: Any, recipe: str, build_id: str, region: str,
                   images: dict[str, str], rollout: dict[str, Any]) -> None:
    what = f"launch template {target.launch_template}"
    if region not in images:
        _skip(rollout, what, region, f"the image has no copy in {region}; add it to "
                                     "image.regions")
        return
    ec2 = env.client("ec2", region)
    current = lt_api.default_version(ec2, target.launch_template)
    if current is None:
        _skip(rollout, what, region, f"there is no such launch template in {region}")
        return
    described = (ec2_api.describe_image(ec2, current.image_id)
                 if current.image_id and current.image_id.startswith("ami-") else None)
    decision = decide_template(
        target, recipe=recipe, new_image=images[region], default_image=current.image_id,
        default_image_tags=ec2_api.tags_of(described) if described else None,
        template_tags=current.tags, stack=env.stack_name)
    if not decision.move:
        _skip(rollout, what, region, decision.reason)
        return
    version = lt_api.add_version(
        ec2, current.template_id, source_version=current.version, image_id=images[region],
        description=f"amiforge: recipe {recipe} build {build_id}",
        token=f"{build_id}-{current.template_id}")
    lt_api.set_default(ec2, current.template_id, version)
    rollout["templates"].append({
        "launch_template": target.launch_template, "template_id": current.template_id,
        "region": region, "version": version, "previous_version": current.version,
        "image_id": images[region], "previous_image_id": current.image_id or "",
        "reason": decision.reason})


def _start_refresh(env: StepEnv, target: Any, region: str, moved: list[dict[str, Any]],
                   rollout: dict[str, Any]) -> None:
    what = f"Auto Scaling group {target.auto_scaling_group}"
    autoscaling = env.client("autoscaling", region)
    found = asg_api.group(autoscaling, target.auto_scaling_group)
    if found is None:
        _skip(rollout, what, region, f"there is no such group in {region}")
        return
    if not permits(found.tags, env.stack_name):
        _skip(rollout, what, region, f"it is not tagged amiforge:rollout={env.stack_name}: "
                                     "tag it so to let this stack refresh it")
        return
    made = next((m for m in moved if m["region"] == region
                 and m["template_id"] == found.template_id), None)
    if made is None:
        _skip(rollout, what, region, f"its launch template ({found.template_id or 'none'}) is "
                                     "not one this rollout moved; list it in "
                                     "release.launch_templates")
        return
    request = refresh_request(target, template_id=made["template_id"], version=made["version"])
    refresh_id = asg_api.start_refresh(autoscaling, request)
    rollout["refreshes"].append({"auto_scaling_group": found.name, "region": region,
                                 "refresh_id": refresh_id, "status": "Pending",
                                 "reason": "", "outcome": "running"})


def _record(env: StepEnv, recipe: str, build_id: str, rollout: dict[str, Any]) -> None:
    env.catalog.update(recipe, build_id, rollout={
        k: v for k, v in rollout.items() if k != "timeout_seconds"})
