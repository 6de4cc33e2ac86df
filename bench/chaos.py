"""Benchmark: builds under faults, and a burst of recipes published at once.

Prints one JSON object with two runs on one local cloud (bench/chaos_harness.py does
the work and the audit, as for the chaos test tier):

* ``chaos``: N builds (default 20) while 10% of the functions' AWS calls are throttled
  or fail with a 5xx, 10% of EventBridge deliveries are lost and 5% of invocations are
  killed after their first state-changing call. One recipe always fails and two fail
  their first launch, so failure and relaunch paths run under chaos too. Figures: how
  builds ended, faults/crashes/drops injected, SDK and state-machine retries, how stops
  were noticed, duplicates and leftovers (before and after the sweeper), wall time.
* ``burst``: M recipes (default 50) published at once, no faults: every RunInstances
  the functions sent, judged against EC2's bucket (5 burst, 2 per second).

Usage: python bench/chaos.py [--builds N] [--burst M] [--fault-rate F] [--drop-rate D]
       [--crash-rate C] [--only chaos|burst]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from chaos_harness import ChaosPlan, chaos_run, deploy_stack  # noqa: E402

from amiforge.core import ratelimit  # noqa: E402
from amiforge.localcloud.server import LocalCloud  # noqa: E402

# The stack is deployed with the production launch budget (the template's defaults).
PACE = (ratelimit.DEFAULT_LAUNCH_BURST, ratelimit.DEFAULT_LAUNCH_PER_SECOND)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=20)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--drop-rate", type=float, default=0.10)
    parser.add_argument("--crash-rate", type=float, default=0.05)
    parser.add_argument("--only", choices=("chaos", "burst"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    out: dict = {"python": platform.python_version(), "cpus": os.cpu_count()}
    started = time.monotonic()
    with LocalCloud() as cloud, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(cloud.env())
        stack = "amiforge-chaos"
        _, env = deploy_stack(cloud, stack)
        out["deploy_seconds"] = round(time.monotonic() - started, 1)
        if args.only in (None, "chaos"):
            plan = ChaosPlan(builds=args.builds, fault_rate=args.fault_rate,
                             event_drop_rate=args.drop_rate, crash_rate=args.crash_rate)
            out["chaos"] = chaos_run(cloud, env, stack, Path(tmp) / "chaos", plan, pace=PACE)
        if args.only in (None, "burst"):
            # Every Resolve and Launch at once, as Lambda would run them: the budget, not
            # the local cloud's concurrency, must be what spaces the RunInstances out.
            plan = ChaosPlan(builds=args.burst, fault_rate=0.0, event_drop_rate=0.0,
                             crash_rate=0.0, flaky=0, failing=0, prefix="burst",
                             builder_seconds=0.5,
                             concurrency_by_function={f"{stack}-resolve": args.burst,
                                                      f"{stack}-launch": args.burst})
            out["burst"] = chaos_run(cloud, env, stack, Path(tmp) / "burst", plan,
                                     pace=PACE)
    out["total_seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(out, indent=2, sort_keys=True))
    runs = [out[k] for k in ("chaos", "burst") if k in out]
    ok = all(not r["unexpected"] and not r["duplicates"]["problems"]
             and not any(r.get("leftovers_after_sweep", r["leftovers"]).values())
             and r["run_instances"]["would_be_throttled_by_ec2"] == 0 for r in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
