"""Cost of one Lambda invoke in the local cloud (wall time, median of N), as one JSON object.

Two functions: ``bare`` returns at once; ``boto3`` makes a client at module level and one
call per invoke (what amiforge's handlers do). Each is measured cold (every invoke a
fresh process: ``LocalCloud(warm_lambdas=False)``) and warm (the default: an execution
environment is reused, as on AWS).

    python bench/lambda_invoke.py [N]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time

import boto3

from amiforge.localcloud import LocalCloud
from amiforge.localcloud.testing import create_function

FUNCTIONS = {
    "bare": "def handler(event, context):\n    return event\n",
    "boto3": ("import boto3\nsts = boto3.client('sts')\n"
              "def handler(event, context):\n    return sts.get_caller_identity()['Account']\n"),
}


def measure(warm: bool, runs: int) -> dict[str, float]:
    result: dict[str, float] = {}
    mode = "warm" if warm else "cold"
    with LocalCloud(warm_lambdas=warm) as cloud:
        os.environ.update(cloud.env())
        lam, iam = boto3.client("lambda"), boto3.client("iam")
        for name, source in FUNCTIONS.items():
            create_function(lam, iam, name, source)
            lam.invoke(FunctionName=name, Payload=b"{}")  # extracts the zip (and warms up)
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                response = lam.invoke(FunctionName=name, Payload=b'{"n": 1}')
                response["Payload"].read()
                times.append((time.perf_counter() - started) * 1000)
                assert "FunctionError" not in response, name
            result[f"{mode}_{name}_median_ms"] = round(statistics.median(times), 1)
            result[f"{mode}_{name}_max_ms"] = round(max(times), 1)
    return result


def main(runs: int) -> dict[str, object]:
    return {"runs": runs, "python": sys.version.split()[0],
            "load_1min": round(os.getloadavg()[0], 2),
            **measure(False, runs), **measure(True, runs)}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)))
