"""Benchmark: state transitions per build while EC2 snapshots (issue 23).

Prints one JSON object. On the local cloud, with the production stack deployed as the demo
does (``SecondsPerMinute=1``: a recipe "minute" is one second) and the local cloud's image
simulator holding every new image ``pending`` for a while, three builds run one after the
other through ``start_build`` and ``wait_for_builds``:

* ``ready_at_once``: the image is available as soon as CreateImage returns;
* ``10min_snapshot``: the image stays pending for 10 "minutes" (10 s here), as a 10-minute
  snapshot on AWS;
* ``10min_snapshot_with_copy``: the same, plus a copy to another region that stays pending
  as long (copies are noticed by the image check, a ``rate(1 minute)`` schedule; the
  local cloud's clock runs 60 times faster here, so it ticks every second).

For each it counts, from the execution's history, the state transitions (``*StateEntered``:
what Standard workflows bill) and the Lambda invocations the state machine made
(``LambdaFunctionScheduled`` + ``TaskScheduled``), plus how long AwaitImage lasted. The
target (issue 23) is ``transitions_per_build_10min_snapshot`` <= 20; with the poll loop it
replaced (AwaitImage, ImageReady?, WaitForImage every ``PollSeconds`` = 15 s on AWS) a
10-minute snapshot cost 40 polls x 3 states on top of the build's own, about 135.

    python bench/image_wait.py [PENDING_MINUTES]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from amiforge.aws import stepfunctions as sfn_api  # noqa: E402
from amiforge.aws.session import AwsContext  # noqa: E402
from amiforge.core.recipes import load_recipes  # noqa: E402
from amiforge.deploy import stack as stack_api  # noqa: E402
from amiforge.localcloud.server import LocalCloud  # noqa: E402
from amiforge.ops.builds import execution_arn_for, start_build, wait_for_builds  # noqa: E402
from amiforge.ops.connect import connect  # noqa: E402
from amiforge.ops.demo import LOCAL_STACK_PARAMETERS, seed_bases  # noqa: E402
from amiforge.ops.publish import publish  # noqa: E402
from amiforge.steps.env import StepEnv  # noqa: E402

STACK = "amiforge-bench-images"
BASE = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"
COPY_REGION = "eu-west-1"
AWS_POLL_SECONDS = 15  # PollSeconds' default on AWS, for the polling estimate
PARAMETERS = {**LOCAL_STACK_PARAMETERS, "DetectSchedule": "rate(30 days)",
              "SweepSchedule": "rate(30 days)", "PruneSchedule": "rate(30 days)"}


def write_recipes(directory: Path) -> None:
    (directory / "scripts").mkdir(parents=True)
    for name, regions in (("quick", ""), ("snapshot", ""),
                          ("copied", f"image:\n  regions: [{COPY_REGION}]\n")):
        (directory / "scripts" / f"{name}.sh").write_text("#!/bin/bash\necho hello\n")
        (directory / f"{name}.yaml").write_text(textwrap.dedent(f"""\
            name: {name}
            base:
              ssm_parameter: {BASE}
            build:
              platform: linux
              user_data: scripts/{name}.sh
              instance_types: [t3.small]
              timeout_minutes: 120
              retries: 0
            """) + regions)


def measure(env: StepEnv, recipe: str) -> dict[str, Any]:
    started = time.monotonic()
    build = start_build(env, recipe, trigger="bench")
    (record,) = wait_for_builds(env, [build], poll=0.25, timeout=600)
    if record.get("status") != "AVAILABLE":
        raise RuntimeError(f"build of {recipe} ended {record.get('status')}: "
                           f"{record.get('reason')}")
    history = sfn_api.history(env.client("stepfunctions"),
                              execution_arn_for(env, build["build_id"]))
    kinds = Counter(e["type"] for e in history)
    states: Counter[str] = Counter()
    entered: dict[str, float] = {}
    for event in history:
        if event["type"].endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            states[name] += 1
            entered.setdefault(name, event["timestamp"].timestamp())
    return {"state_transitions": sum(states.values()), "states": dict(states),
            "lambda_invocations_by_state_machine":
                kinds["LambdaFunctionScheduled"] + kinds["TaskScheduled"],
            "await_image_s": round(entered["Test?"] - entered["AwaitImage"], 2),
            "build_s": round(time.monotonic() - started, 1)}


def main(pending_minutes: int) -> dict[str, Any]:
    load_start = os.getloadavg()
    seconds = float(pending_minutes)  # SecondsPerMinute=1: one "minute" is one second
    with tempfile.TemporaryDirectory(prefix="amiforge-bench-") as tmp, \
            LocalCloud(builder_seconds=1.0) as cloud:
        os.environ.update(cloud.env())
        aws = AwsContext(region=cloud.region, endpoint_url=cloud.endpoint)
        stack_api.deploy(aws, STACK, PARAMETERS)
        env = connect(aws, STACK)
        write_recipes(Path(tmp))
        recipes = load_recipes(Path(tmp))
        seed_bases(cloud, env, recipes)
        publish(env, recipes, None)
        runs = {"ready_at_once": measure(env, "quick")}
        cloud.image_pending_seconds = seconds
        runs[f"{pending_minutes}min_snapshot"] = measure(env, "snapshot")
        cloud.time_scale = 60.0  # the image check's rate(1 minute) ticks every second
        runs[f"{pending_minutes}min_snapshot_with_copy"] = measure(env, "copied")
    base = runs["ready_at_once"]["state_transitions"]
    polls = pending_minutes * 60 // AWS_POLL_SECONDS
    return {
        "benchmark": "image_wait",
        "pending_minutes": pending_minutes,
        "machine": {"cpus": os.cpu_count(),
                    "load_1_5_15_start": [round(x, 2) for x in load_start],
                    "load_1_5_15_end": [round(x, 2) for x in os.getloadavg()]},
        "method": ("SecondsPerMinute=1 (a 'minute' is 1 s); images (and the copy) pending "
                   f"{seconds:g} s in the local cloud's image simulator; transitions = "
                   "*StateEntered events of the execution's history"),
        "transitions_per_build_10min_snapshot": runs[f"{pending_minutes}min_snapshot"][
            "state_transitions"],
        "transitions_per_build_image_ready_at_once": base,
        "transitions_per_build_10min_snapshot_with_copy":
            runs[f"{pending_minutes}min_snapshot_with_copy"]["state_transitions"],
        "polling_estimate_10min_snapshot_on_aws": {
            "polls": polls, "extra_transitions": 3 * polls,
            "note": "the replaced loop: AwaitImage, ImageReady?, WaitForImage per 15 s poll"},
        "runs": runs,
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if sys.argv[1:] else 10), indent=2))
