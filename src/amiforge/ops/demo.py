"""The demo: amiforge's whole main job, end to end, on an embedded local cloud.

deploy the stack -> seed the vendors' base images the examples need -> publish the
example recipes -> build them all -> report the catalog. The stack, the bundle and the
state machine are the production ones; only the waits are shorter (stack parameters).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from amiforge.aws.session import AwsContext
from amiforge.core.model import BaseSpec, Recipe
from amiforge.core.recipes import load_recipes
from amiforge.deploy import stack as stack_api
from amiforge.ops import views
from amiforge.ops.builds import not_available, start_build, wait_for_builds
from amiforge.ops.connect import connect
from amiforge.ops.publish import git_commit, publish
from amiforge.steps.base import resolve_bases
from amiforge.steps.env import StepEnv

# The local cloud counts a recipe's timeout minute as one second and polls every second.
LOCAL_STACK_PARAMETERS = {"SecondsPerMinute": "1", "PollSeconds": "1"}


def vendor_name_for(base: BaseSpec) -> str:
    """A plausible vendor image name that the base's name glob matches."""
    glob = base.name or "vendor-image-*"
    return glob.replace("*", "2026.11.0").replace("?", "x").lstrip("-") or "vendor-image"


def seed_bases(cloud: Any, env: StepEnv, recipes: list[Recipe]) -> list[dict[str, str]]:
    """Release a vendor image for every base the local cloud cannot resolve yet."""
    seeded = []
    resolved = resolve_bases(env, [r.base for r in recipes])
    bases = {r.base.query_key(): r for r in recipes}
    for key, result in resolved.items():
        if result.image_id:
            continue
        recipe = bases[key]
        base = recipe.base
        owner = base.owners[0] if base.owners else "amazon"
        name = (vendor_name_for(base) if base.name else
                (base.ssm_parameter or "vendor-image").rsplit("/", 1)[-1])
        image_id = cloud.release_base(
            name=name, owner=owner, ssm_parameter=base.ssm_parameter,
            architecture=base.architecture or "x86_64",
            platform="windows" if recipe.build.platform == "windows" else None)
        seeded.append({"base": key, "image_id": image_id})
    return seeded


def run_demo(recipes_dir: Path, *, stack: str = "amiforge", builder_seconds: float = 2.0,
             progress: Callable[[str], None] = lambda _m: None,
             on_update: Callable[..., None] = lambda *_a: None,
             make_progress: Callable[[list[dict[str, Any]]], Any] | None = None) -> dict[str, Any]:
    from amiforge.localcloud.server import LocalCloud

    recipes = load_recipes(recipes_dir)  # fail fast on bad recipes, before starting anything
    started_at = time.monotonic()
    with LocalCloud(builder_seconds=builder_seconds) as cloud:
        os.environ.update(cloud.env())
        progress(f"local cloud listening on {cloud.endpoint}")
        aws = AwsContext(region=cloud.region, endpoint_url=cloud.endpoint)
        outputs = stack_api.deploy(aws, stack, LOCAL_STACK_PARAMETERS, progress=progress)
        env = connect(aws, stack)
        for seeded in seed_bases(cloud, env, recipes):
            progress(f"released vendor base {seeded['image_id']} for {seeded['base']}")
        published = publish(env, recipes, git_commit(recipes_dir))
        progress(f"published {len(published)} recipes")
        builds = [start_build(env, r.name, trigger="demo") for r in recipes]
        if make_progress is not None:
            with make_progress(builds) as callback:
                results = wait_for_builds(env, builds, on_update=callback, timeout=600)
        else:
            results = wait_for_builds(env, builds, on_update=on_update, timeout=600)
        # Only the public fields (never the task token or the build key): views decides.
        catalog = [views.build_record(b) for b in env.catalog.all_builds()]
    return {
        "stack": stack, "outputs": outputs, "seconds": round(time.monotonic() - started_at, 1),
        "builds": [{k: v for k, v in r.items() if k != "record"} for r in results],
        "catalog": catalog,
        "ok": not not_available(results),
    }
