"""Cost of one Lambda invoke in the local cloud (wall time, median of N), as one JSON object.

Two functions: ``bare`` returns at once; ``boto3`` makes a client at module level and one
call per invoke (what amiforge's handlers do). Each is measured three ways:

* ``fresh``: a cold start in a fresh interpreter (``python -I -S``), as before the fork
  server;
* ``forked``: a cold start in a process forked from the pre-initialised parent that has
  imported boto3 once (``lambda_zygote``), the default;
* ``warm``: an execution environment reused, as on AWS.

Fresh and forked cold starts are measured side by side in one cloud, interleaved, so load
on the machine hits both alike; ``cold_invoke_speedup`` is fresh ÷ forked for ``boto3``.
Absolute times depend on the machine's load (``load_1min``).

    .venv/bin/python bench/lambda_invoke.py [N]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from typing import Any

import boto3

from amiforge.localcloud.server import LocalCloud
from amiforge.localcloud.testing import create_function

FUNCTIONS = {
    "bare": "def handler(event, context):\n    return event\n",
    "boto3": ("import boto3\nsts = boto3.client('sts')\n"
              "def handler(event, context):\n    return sts.get_caller_identity()['Account']\n"),
}


def invoke_ms(lam: Any, name: str) -> float:
    started = time.perf_counter()
    response = lam.invoke(FunctionName=name, Payload=b'{"n": 1}')
    response["Payload"].read()
    assert "FunctionError" not in response, name
    return (time.perf_counter() - started) * 1000


def measure_cold(runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {}
    with LocalCloud(warm_lambdas=False) as cloud:
        os.environ.update(cloud.env())
        lam, iam = boto3.client("lambda"), boto3.client("iam")
        for name, source in FUNCTIONS.items():
            create_function(lam, iam, name, source)
            lam.invoke(FunctionName=name, Payload=b"{}")  # extracts the zip
        for _ in range(runs):
            for name in FUNCTIONS:
                for mode, forked in (("fresh", False), ("forked", True)):
                    cloud.runtime.fork_server = forked
                    times.setdefault(f"cold_{mode}_{name}", []).append(invoke_ms(lam, name))
    result = {}
    for key, values in times.items():
        result[f"{key}_median_ms"] = round(statistics.median(values), 1)
        result[f"{key}_max_ms"] = round(max(values), 1)
    result["cold_invoke_speedup"] = round(
        result["cold_fresh_boto3_median_ms"] / result["cold_forked_boto3_median_ms"], 2)
    return result


def measure_warm(runs: int) -> dict[str, float]:
    result: dict[str, float] = {}
    with LocalCloud() as cloud:
        os.environ.update(cloud.env())
        lam, iam = boto3.client("lambda"), boto3.client("iam")
        for name, source in FUNCTIONS.items():
            create_function(lam, iam, name, source)
            lam.invoke(FunctionName=name, Payload=b"{}")  # the cold start
            times = [invoke_ms(lam, name) for _ in range(runs)]
            result[f"warm_{name}_median_ms"] = round(statistics.median(times), 1)
            result[f"warm_{name}_max_ms"] = round(max(times), 1)
    return result


def main(runs: int) -> dict[str, object]:
    return {"runs": runs, "python": sys.version.split()[0],
            "load_1min": round(os.getloadavg()[0], 2),
            **measure_cold(runs), **measure_warm(runs)}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10), indent=2))
