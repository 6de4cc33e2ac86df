"""The sweeper's repair of ``/amiforge/<recipe>/latest`` when it names a missing image.

A parameter can outlive its image (a Register that failed after moving it, an image
deregistered by hand). Consumers would then launch nothing. For every published recipe
and every region it publishes in, :func:`repair_latest` reads the parameter; if the image
it names no longer exists (or is no longer ``available``), it points the parameter at the
newest AVAILABLE build's image in that region that does exist, or, if there is none,
reports it. Each region on its own: one that cannot be read is reported and the others
are still checked. A dry run reports the same and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import ssm as ssm_api
from amiforge.core.records import BuildRecord
from amiforge.steps.env import StepEnv
from amiforge.steps.gate import describe_failure

log = logging.getLogger(__name__)


def _exists(ec2: Any, image_id: str | None) -> bool:
    if not image_id:
        return False
    image = ec2_api.describe_image(ec2, image_id)
    return image is not None and image.get("State") == "available"


def _image_in(record: Mapping[str, Any], region: str, home: str) -> str | None:
    images = record.get("images") or {}
    return images.get(region) or (record.get("image_id") if region == home else None)


def repair_latest(env: StepEnv, recipes: list[dict[str, Any]], *, dry_run: bool,
                  skip: set[str] | frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """Rows (kind ``latest``) for every parameter that names a missing image."""
    rows: list[dict[str, Any]] = []
    for recipe in recipes:
        name = recipe["name"]
        regions = [env.region,
                   *((recipe.get("document") or {}).get("image", {}).get("regions") or [])]
        builds: list[BuildRecord] | None = None
        for region in dict.fromkeys(regions):
            if region in skip:
                continue
            parameter = ssm_api.latest_parameter_name(name)
            row = {"recipe": name, "build_id": "", "region": region, "kind": "latest",
                   "resource": parameter}
            try:
                ec2 = env.client("ec2", region)
                named = ssm_api.get_value(env.client("ssm", region), parameter)
                if named is None or _exists(ec2, named):
                    continue
                if builds is None:
                    builds = env.catalog.available(name)  # newest first
                found = next(((b, image) for b in builds
                              if _exists(ec2, image := _image_in(b, region, env.region))),
                             None)
                if found is None:
                    rows.append({**row, "action": "report", "outcome": "error",
                                 "reason": f"latest names {named}, which does not exist, "
                                           f"and no AVAILABLE image of {name} exists in "
                                           f"{region}"})
                    continue
                build, image = found
                rows.append({**row, "build_id": build["build_id"], "action": "repair-latest",
                             "reason": f"latest named {named}, which does not exist; the "
                                       f"newest AVAILABLE image is {image}",
                             "outcome": "planned" if dry_run else "done"})
                if not dry_run:
                    ssm_api.put_latest(env.client("ssm", region), name, str(image),
                                       description=f"amiforge {name}: build "
                                                   f"{build['build_id']} (repaired by sweep)",
                                       stack=env.stack_name or None)
            except Exception as err:  # this region only
                log.warning("latest of %s in %s: %s", name, region, err)
                rows.append({**row, "action": "error", "outcome": "error",
                             "reason": f"could not check latest: {describe_failure(err)}"})
    return rows
