"""Step Resolve: pin the recipe version and base image, and open the catalog record.

:func:`resolve_and_launch` (the Resolve state's function) then launches the first
attempt's builder (unless a CloudFormation template makes it) in the same invocation: one
Lambda invocation fewer per build. A launch that fails there is only logged: the Builder?
choice sends a state without ``launch`` to the Launch state, which runs the same launch
(idempotent per build and attempt: an instance already tagged for them is reused) with
its own Retry and Catch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.core.hashing import build_key
from amiforge.core.parse import recipe_from_document
from amiforge.errors import NotFound
from amiforge.steps.base import resolve_one
from amiforge.steps.env import StepEnv
from amiforge.steps.launch import launch

log = logging.getLogger(__name__)

# Keys of $.build the state machine reads but the catalog record does not keep.
_ROUTING_ONLY = frozenset({"root_device", "root_volume_gb", "tests", "copies"})


def resolve(event: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """Input: {input: {recipe, trigger?, recipe_hash?, base_ami?}, build_id, execution_arn}.

    ``input`` is the execution's input; the build id is the execution's name.
    """
    event = {**event.get("input", {}), "build_id": event["build_id"],
             "execution_arn": event.get("execution_arn")}
    name = event["recipe"]
    record = (env.store.version(name, event["recipe_hash"]) if event.get("recipe_hash")
              else env.store.current(name))
    if record is None:
        raise NotFound(f"recipe {name!r} is not published", hint="run `amiforge publish DIR`")
    recipe = recipe_from_document(record["document"])
    base_ami = event.get("base_ami") or resolve_one(env, recipe.base)
    image = ec2_api.describe_image(env.client("ec2"), base_ami)
    if image is None:
        raise NotFound(f"base image {base_ami} of recipe {name!r} does not exist")
    build = {
        "recipe": name,
        "build_id": event["build_id"],
        "recipe_hash": recipe.hash,
        "build_key": build_key(name, recipe.hash, base_ami),
        "base_ami": base_ami,
        "base_name": image.get("Name"),
        "root_device": image.get("RootDeviceName") or "/dev/xvda",
        "root_volume_gb": _root_volume_gb(image, recipe.build.platform),
        "platform": recipe.build.platform,
        "builder": recipe.builder,
        "git_commit": record.get("git_commit"),
        "retries": recipe.build.retries,
        "regions": list(recipe.image.regions),
        "share_with": list(recipe.image.share_with),
        "trigger": event.get("trigger", "manual"),
        # release.approval: the Approval? choice holds a manual one at AwaitApproval.
        "approval": recipe.release.approval,
        # release.launch_templates: the RollsOut? choice runs RollOut after Register.
        "rolls_out": recipe.release.rolls_out,
        # The Test? and Copies? choices: LaunchTester runs only for a recipe with `test:`,
        # Distribute (and AwaitCopies) only when image.regions names another region.
        # Execution routing only; the catalog record does not keep them.
        "tests": recipe.test is not None,
        "copies": any(region != env.region for region in recipe.image.regions),
    }
    # A retried Resolve finds its own record already there: the build stays what the
    # first attempt pinned (its builder may be running it), even if the recipe or the
    # base moved on in between.
    if not env.catalog.start({**{k: v for k, v in build.items() if k not in _ROUTING_ONLY},
                              "execution_arn": event.get("execution_arn"), "launches": 0}):
        pinned: Mapping[str, Any] = env.catalog.get(name, event["build_id"]) or {}
        if (pinned.get("recipe_hash"), pinned.get("base_ami")) != (recipe.hash, base_ami) \
                and pinned.get("recipe_hash") and pinned.get("base_ami"):
            return resolve({"input": {**event, "recipe_hash": pinned["recipe_hash"],
                                      "base_ami": pinned["base_ami"]},
                            "build_id": event["build_id"],
                            "execution_arn": event.get("execution_arn")}, env)
    poll = max(1, env.poll_seconds)
    return {
        "build": build,
        "timing": {
            "timeout_seconds": recipe.build.timeout_minutes * env.seconds_per_minute,
            "poll_seconds": poll,
            "max_image_polls": max(1, env.image_timeout_minutes * env.seconds_per_minute // poll),
            # AwaitImage and AwaitCopies wait by event for up to this long (the task's timeout).
            "image_timeout_seconds": max(1, env.image_timeout_minutes * env.seconds_per_minute),
            "approval_timeout_seconds": (recipe.release.approval_timeout_hours * 60
                                         * env.seconds_per_minute),
        },
    }


def resolve_and_launch(event: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """Resolve; then, unless a CloudFormation template makes the builder, launch the first attempt's builder too."""
    state = resolve(event, env)
    if state["build"]["builder"] == "cloudformation":
        return state
    try:
        return {**state, "launch": launch(state, env)}
    except Exception as err:  # the Launch state launches it, with its Retry and Catch
        log.warning("launch after resolve failed; the Launch state runs it: %s: %s",
                    type(err).__name__, err)
        return state


def _root_volume_gb(image: dict[str, Any], platform: str) -> int:
    """Size of the base image's root volume (the builder's disk can only be as big or bigger)."""
    root = image.get("RootDeviceName")
    for mapping in image.get("BlockDeviceMappings", []):
        size = mapping.get("Ebs", {}).get("VolumeSize")
        if size and (mapping.get("DeviceName") == root or root is None):
            return int(size)
    return 30 if platform == "windows" else 8
