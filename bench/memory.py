"""Benchmark: does the local cloud stay bounded over long runs of back-to-back builds?

Prints one JSON object. Runs ``amiforge local up`` as a user does (its own process),
deploys the stack into it with the CLI, then for ``MINUTES`` keeps ``PARALLEL`` builds
going at all times: each round edits every recipe's script (so its hash, and its build,
are new), publishes, and waits until each build has ended (``amiforge status``). Every
``SAMPLE_SECONDS`` it reads the memory of the local cloud's whole process tree (the
server and its Lambda execution environments) from ``/proc``:

* ``rss_mb``: resident set size summed over the processes (counts shared pages once per
  process, so it is an upper bound);
* ``pss_mb``: proportional set size (shared pages split between their users): what the
  tree really costs the machine.

Target (the local cloud's part of the CLI issue): resident memory after 30 minutes of
back-to-back builds under 1.5 GB. Figures are absolute and depend on the machine's load.

    .venv/bin/python bench/memory.py [MINUTES=30] [PARALLEL=2] [SAMPLE_SECONDS=30]
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

AMIFORGE = str(Path(sys.executable).with_name("amiforge"))
LIMIT_MB = 1536
BASE = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"


def arg(n: int, default: float) -> float:
    return float(sys.argv[n]) if len(sys.argv) > n else default


def tree(root: int) -> list[int]:
    """``root`` and every descendant, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def memory(root: int) -> dict[str, float]:
    rss = pss = 0
    pids = tree(root)
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return {"rss_mb": round(rss / 1024, 1), "pss_mb": round(pss / 1024, 1),
            "processes": len(pids)}


def cli(env: dict[str, str], *args: str) -> Any:
    proc = subprocess.run([AMIFORGE, "--output", "json", *args], env=env, capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"amiforge {' '.join(args)} failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def write_recipes(directory: Path, parallel: int, round_no: int) -> list[str]:
    names = []
    for n in range(parallel):
        name = f"mem-{n}"
        (directory / "s").mkdir(parents=True, exist_ok=True)
        (directory / "s" / f"{name}.sh").write_text(f"#!/bin/bash\necho round {round_no}\n")
        (directory / f"{name}.yaml").write_text(
            f"name: {name}\nbase:\n  ssm_parameter: {BASE}\nbuild:\n  user_data: s/{name}.sh\n"
            )
        names.append(name)
    return names


def main() -> None:
    minutes, parallel, every = arg(1, 30), int(arg(2, 2)), arg(3, 30)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    cloud = subprocess.Popen([AMIFORGE, "local", "up", "--port", str(port)], env=base_env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             start_new_session=True)
    env = {**base_env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
    samples: list[dict[str, float]] = []
    builds = failed = 0
    try:
        for line in cloud.stdout:  # type: ignore[union-attr]
            if "AWS_DEFAULT_REGION" in line:
                break
        cli(env, "deploy", "-p", "SecondsPerMinute=1", "-p", "PollSeconds=1")
        directory = Path(tempfile.mkdtemp(prefix="amiforge-memory-"))
        started = last_sample = time.monotonic()
        samples.append({"minute": 0.0, **memory(cloud.pid)})
        round_no = 0
        seen: set[str] = set()
        while time.monotonic() - started < minutes * 60:
            round_no += 1
            names = write_recipes(directory, parallel, round_no)
            cli(env, "publish", str(directory))
            pending = set(names)
            while pending:
                time.sleep(1)
                for row in cli(env, "status")["recipes"]:
                    # This round's build: a build id not seen before, and ended.
                    if (row["recipe"] in pending and row.get("last_build") not in seen
                            and row.get("last_status") in ("AVAILABLE", "FAILED")):
                        pending.discard(row["recipe"])
                        seen.add(row["last_build"])
                        builds += 1
                        failed += row["last_status"] == "FAILED"
                if time.monotonic() - last_sample >= every:
                    last_sample = time.monotonic()
                    samples.append({"minute": round((last_sample - started) / 60, 2),
                                    **memory(cloud.pid)})
        samples.append({"minute": round((time.monotonic() - started) / 60, 2),
                        **memory(cloud.pid)})
    finally:
        os.killpg(cloud.pid, 2)
        cloud.wait(timeout=60)
    end = samples[-1]
    print(json.dumps({
        "benchmark": "local cloud memory over back-to-back builds",
        "minutes": minutes, "parallel_builds": parallel, "builds": builds, "failed": failed,
        "rss_end_mb": end["rss_mb"], "pss_end_mb": end["pss_mb"],
        "processes_end": end["processes"],
        "rss_peak_mb": max(s["rss_mb"] for s in samples),
        "pss_peak_mb": max(s["pss_mb"] for s in samples),
        # Judged on PSS: execution environments fork from one parent and share its pages
        # (boto3, the parsed botocore models), which RSS counts once per process.
        "limit_mb": LIMIT_MB, "within_limit": end["pss_mb"] < LIMIT_MB,
        "samples": samples,
    }, indent=2))


if __name__ == "__main__":
    main()
