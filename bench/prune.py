"""Benchmark: AWS calls per image retention prunes.

Prints one JSON object. For N in SIZES, on the local cloud: one recipe (retention: keep
1) with N + 1 AVAILABLE builds, each an image with its snapshot, tagged as a build leaves
them; then one ``prune`` run, counting every AWS call it makes (botocore before-call
events on the session every client is made from), by operation. A second recipe's N
builds are pruned with a copy in a second region (two images per build).

* ``calls_per_pruned_image``: all of the run's calls ÷ images deregistered (the run's
  fixed reads - the recipe store, the catalog, ``latest``, the region's usage scan, the
  builds' listing - are shared by all its images, so it falls with N);
* ``marginal_calls_per_pruned_image``: (calls at the largest N - calls at the smallest)
  ÷ (the difference in images): what one more image costs;
* ``prune_calls_per_pruned_image``: the marginal figure with home-region images only
  (the run's fixed reads are per run, not per image; ``calls_per_pruned_image`` at each N
  shows them shared).

    python bench/prune.py
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.helpers import (  # noqa: E402
    build_id_of,
    iso,
    publish_recipe,
    seed,
    stack_resources,
    write_recipe,
)

from amiforge.aws.session import AwsContext  # noqa: E402
from amiforge.core.tags import BUILD_ID, RECIPE  # noqa: E402
from amiforge.localcloud.server import LocalCloud  # noqa: E402
from amiforge.steps.env import StepEnv  # noqa: E402
from amiforge.steps.prune import prune  # noqa: E402

SIZES = (1, 10, 50)
COPY = "us-west-2"


def image(ec2: Any, recipe: str, build_id: str, copy_of: str | None = None,
          source_region: str = "") -> str:
    if copy_of:
        image_id = ec2.copy_image(SourceImageId=copy_of, SourceRegion=source_region,
                                  Name=f"{build_id}-copy")["ImageId"]
    else:
        image_id = ec2.register_image(Name=build_id, RootDeviceName="/dev/xvda")["ImageId"]
    (described,) = ec2.describe_images(ImageIds=[image_id])["Images"]
    snapshots = [m["Ebs"]["SnapshotId"] for m in described["BlockDeviceMappings"]
                 if m.get("Ebs", {}).get("SnapshotId")]
    ec2.create_tags(Resources=[image_id, *snapshots],
                    Tags=[{"Key": BUILD_ID, "Value": build_id}, {"Key": RECIPE, "Value": recipe}])
    return str(image_id)


def one(setup: StepEnv, counted: StepEnv, calls: Counter, n: int, workdir: Path,
        copy: bool) -> dict[str, Any]:
    recipe = f"bench{'c' if copy else 'h'}{n}-{os.urandom(3).hex()}"
    home = setup.client("ec2")
    other = setup.client("ec2", COPY)
    records = []
    for i in range(n + 1):
        build_id = build_id_of(recipe)
        images = {setup.region: image(home, recipe, build_id)}
        if copy:
            images[COPY] = image(other, recipe, build_id, images[setup.region], setup.region)
        records.append({"recipe": recipe, "build_id": build_id, "status": "AVAILABLE",
                        "created_at": iso(10 + i if i else 0),
                        "image_id": images[setup.region], "images": images})
    regions = f"regions: [{COPY}]\n" if copy else ""
    publish_recipe(setup, write_recipe(workdir, recipe, image=regions,
                                       extra="retention: {keep: 1, max_age_days: 5}\n"))
    seed(setup, *records)
    calls.clear()
    start = time.perf_counter()
    report = prune({"recipes": [recipe]}, counted)
    seconds = time.perf_counter() - start
    assert report["pruned"] == n and report["errors"] == 0, report
    images = n * (2 if copy else 1)
    total = sum(calls.values())
    return {"builds_pruned": n, "images_deregistered": calls["DeregisterImage"],
            "images": images, "aws_calls": total,
            "calls_per_pruned_image": round(total / images, 2),
            "seconds": round(seconds, 3), "by_operation": dict(sorted(calls.items()))}


def main() -> None:
    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                       "load_1m_start": os.getloadavg()[0]}}
    with LocalCloud() as cloud, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(cloud.env())
        aws = AwsContext(region=cloud.region, endpoint_url=cloud.endpoint)
        setup = replace(stack_resources(aws), aws=aws)
        calls: Counter = Counter()
        session = boto3.session.Session(region_name=cloud.region)
        # Clients copy the session's handlers when made: every client prune makes counts.
        session.events.register("before-call.*.*",
                                lambda model, **_: calls.update([model.name]))
        counted = replace(setup, aws=AwsContext(region=cloud.region,
                                                endpoint_url=cloud.endpoint, session=session))
        for copy in (False, True):
            runs = [one(setup, counted, calls, n, Path(tmp), copy) for n in SIZES]
            first, last = runs[0], runs[-1]
            out["home_and_copy_region" if copy else "home_region_only"] = {
                "runs": runs,
                "marginal_calls_per_pruned_image": round(
                    (last["aws_calls"] - first["aws_calls"])
                    / (last["images"] - first["images"]), 2)}
    out["prune_calls_per_pruned_image"] = out["home_region_only"][
        "marginal_calls_per_pruned_image"]
    out["machine"]["load_1m_end"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
