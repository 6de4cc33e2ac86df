"""What a step that creates something needs about its build: the exact recipe version it
started with (:func:`load_recipe`) and the tags everything it creates carries
(:func:`common_tags`). Both read the ``build`` part of the execution state that the build
state machine passes between steps.

The state's shape (JSON, grows as the build goes):
  build:  {recipe, build_id, recipe_hash, build_key, base_ami, root_device, platform,
           git_commit, retries, trigger}
  timing: {timeout_seconds, poll_seconds, max_image_polls, image_timeout_seconds, ...}
  launch: {instance_id, instance_type, attempt}           after Launch
  verdict:{outcome}                                        after Verify
  image:  {image_id, name, state, snapshot_ids}          after CreateImage/AwaitImage
  distribution: {images, ready, pending}                  after Distribute/AwaitCopies
  error:  {Error, Cause}                                   on the failure path
"""

from __future__ import annotations

from typing import Any

from amiforge.core.model import Recipe
from amiforge.core.parse import recipe_from_document
from amiforge.core.tags import build_tags
from amiforge.errors import NotFound, OperationFailed
from amiforge.steps.env import StepEnv


def load_recipe(env: StepEnv, build: dict[str, Any]) -> Recipe:
    """The exact recipe version this build started with."""
    record = env.store.version(build["recipe"], build["recipe_hash"])
    if record is None:
        raise NotFound(f"recipe {build['recipe']!r} version {build['recipe_hash'][:12]} "
                       "is not in the recipe store", hint="run `amiforge publish`")
    return recipe_from_document(record["document"])


def common_tags(build: dict[str, Any], env: StepEnv) -> dict[str, str]:
    """The build's tags, ``amiforge:stack`` included (IAM lets the stack remove only those)."""
    if not env.stack_name:
        raise OperationFailed("AMIFORGE_STACK_NAME is not set: nothing may be created without "
                              "the stack tag", hint="redeploy the stack (`amiforge deploy`)")
    return build_tags(recipe=build["recipe"], build_id=build["build_id"],
                      recipe_hash=build["recipe_hash"], base_ami=build["base_ami"],
                      git_commit=build.get("git_commit"), stack=env.stack_name)
