"""CPU of one call to the local cloud, over kept connections and over new ones, as JSON.

The local cloud serves moto's app with cheroot (``localcloud/http_server.py``), which keeps
HTTP/1.1 connections open. moto's own server, werkzeug's development server, closes the
connection after every response. This script serves the same app (the same cloud) with
both at once and times the same client call (SSM GetParameter, through an amiforge
``AwsContext``) against each, interleaved in rounds so load on the machine hits both
alike. The figure is the process's CPU per call (user + system, client and server
together: both run in this one process), median of the rounds.

    .venv/bin/python bench/local_requests.py [ROUNDS] [CALLS]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from typing import Any

from moto.moto_server.werkzeug_app import MotoRequestHandler
from werkzeug.serving import make_server

from amiforge.aws.session import AwsContext
from amiforge.localcloud.server import LocalCloud


def cpu_ms_per_call(client: Any, calls: int) -> float:
    before = os.times()
    for _ in range(calls):
        client.get_parameter(Name="/bench/value")
    after = os.times()
    return 1000 * ((after.user + after.system) - (before.user + before.system)) / calls


def main(rounds: int, calls: int) -> dict[str, Any]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    cloud = LocalCloud(port=0).start()
    closing = make_server("127.0.0.1", 0, cloud._server.wsgi_app, threaded=True,
                          request_handler=MotoRequestHandler)
    threading.Thread(target=closing.serve_forever, daemon=True).start()
    try:
        clients = {
            "kept": AwsContext(region="us-east-1", endpoint_url=cloud.endpoint).client("ssm"),
            "closed": AwsContext(region="us-east-1", endpoint_url=(
                f"http://127.0.0.1:{closing.server_address[1]}")).client("ssm"),
        }
        clients["kept"].put_parameter(Name="/bench/value", Value="1", Type="String")
        for client in clients.values():
            cpu_ms_per_call(client, 20)  # warm: models parsed, first connections made
        samples: dict[str, list[float]] = {name: [] for name in clients}
        for _ in range(rounds):
            for name, client in clients.items():
                samples[name].append(cpu_ms_per_call(client, calls))
        kept = statistics.median(samples["kept"])
        closed = statistics.median(samples["closed"])
        return {"rounds": rounds, "calls_per_round": calls,
                "load_1min": round(os.getloadavg()[0], 2),
                "local_request_cpu_ms_kept_connection": round(kept, 3),
                "local_request_cpu_ms_new_connection": round(closed, 3),
                "local_request_cpu_ratio_new_over_kept": round(closed / kept, 2),
                "samples_ms": {k: [round(v, 3) for v in vs] for k, vs in samples.items()}}
    finally:
        closing.shutdown()
        closing.server_close()
        cloud.stop()


if __name__ == "__main__":
    started = time.perf_counter()
    result = main(int(sys.argv[1]) if len(sys.argv) > 1 else 5,
                  int(sys.argv[2]) if len(sys.argv) > 2 else 400)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))
