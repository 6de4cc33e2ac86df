"""Benchmark: the Lambda bundle's size, and what its handlers cost to import (a cold start).

Prints one JSON object:

* the bundle (``build_bundle()``): bytes zipped and unzipped, files, and the share of each
  top-level package, against Lambda's limits (50 MB zipped upload, 250 MB unzipped);
* for each handler module, the import time in a fresh ``python -I -S -B`` process whose
  ``sys.path`` holds only the extracted bundle and the packages the Lambda Python runtime
  provides (as tests/unit/deploy/test_bundle.py builds it), median of RUNS:
  - ``source``: the bundle as shipped (no ``.pyc``; ``-B`` writes none, as on AWS, whose
    ``/var/task`` is read-only), so every run compiles amiforge and its dependencies;
  - ``precompiled``: the same files with ``.pyc`` beside them (what shipping bytecode
    would save);
  - ``boto3_only``: ``import boto3`` alone, the part any Python Lambda pays;
* one ``-X importtime`` run per handler, its self time summed by top-level package;
* for each pipeline function, its init: the module imported with ``_HANDLER`` naming the
  function (as Lambda sets it), so that function's own step is imported too
  (``pipeline_functions``; the largest is ``pipeline_function_max_ms``).

    python bench/bundle.py [RUNS]
"""

from __future__ import annotations

import compileall
import io
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from importlib import import_module
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from amiforge.deploy.bundle import build_bundle  # noqa: E402
from amiforge.localcloud.lambda_runtime import RUNTIME_PACKAGES  # noqa: E402

HANDLERS = ("amiforge.handlers.pipeline", "amiforge.handlers.latest_ami")
MB = 1024 * 1024
_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S.*)$")


def sizes(data: bytes) -> dict[str, Any]:
    infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    unzipped, zipped = Counter(), Counter()
    for info in infos:
        top = info.filename.split("/", 1)[0]
        unzipped[top] += info.file_size
        zipped[top] += info.compress_size
    total = sum(unzipped.values())
    return {"zipped_bytes": len(data), "unzipped_bytes": total, "files": len(infos),
            "zipped_share_of_50mb_limit": round(len(data) / (50 * MB), 4),
            "unzipped_share_of_250mb_limit": round(total / (250 * MB), 4),
            "by_package": {top: {"unzipped_bytes": unzipped[top], "zipped_bytes": zipped[top]}
                           for top, _ in unzipped.most_common()}}


def runtime_dir(root: Path) -> Path:
    """Symlinks to the packages AWS's Python runtime provides, as the local cloud does."""
    runtime = root / "runtime"
    runtime.mkdir()
    for name in RUNTIME_PACKAGES:
        origin = Path(import_module(name).__file__ or "")
        target = origin.parent if origin.name == "__init__.py" else origin
        (runtime / target.name).symlink_to(target)
    return runtime


def run(code: str, paths: list[Path], *flags: str,
        handler: str = "") -> subprocess.CompletedProcess[str]:
    prelude = f"import sys, time; sys.path[:0] = {[str(p) for p in paths]!r}\n"
    env = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "PATH": "/usr/bin",
           "AWS_LAMBDA_FUNCTION_NAME": "bench"}
    if handler:  # as Lambda sets it: the module then imports that function's step
        env["_HANDLER"] = handler
    result = subprocess.run([sys.executable, "-I", "-S", "-B", *flags, "-c", prelude + code],
                            capture_output=True, text=True, env=env, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"import failed: {result.stderr[-2000:]}")
    return result


def import_ms(module: str, paths: list[Path], runs: int, handler: str = "") -> dict[str, float]:
    code = (f"t = time.perf_counter()\nimport {module}\n"
            "print((time.perf_counter() - t) * 1000)")
    times = [float(run(code, paths, handler=handler).stdout.strip()) for _ in range(runs)]
    return {"median_ms": round(statistics.median(times), 1), "min_ms": round(min(times), 1),
            "max_ms": round(max(times), 1)}


def importtime_by_package(module: str, paths: list[Path]) -> dict[str, float]:
    """Self import time (ms) summed by top-level package, from one ``-X importtime`` run."""
    stderr = run(f"import {module}", paths, "-X", "importtime").stderr
    by_top: Counter[str] = Counter()
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            by_top[match.group(3).strip().split(".")[0]] += int(match.group(1))
    return {top: round(us / 1000, 1) for top, us in by_top.most_common(8)}


def main(runs: int) -> dict[str, Any]:
    load_start = os.getloadavg()
    bundle = build_bundle()
    with tempfile.TemporaryDirectory(prefix="amiforge-bundle-") as tmp:
        root = Path(tmp)
        zipfile.ZipFile(io.BytesIO(bundle.data)).extractall(root / "task")
        shutil.copytree(root / "task", root / "task-pyc")
        compileall.compile_dir(root / "task-pyc", quiet=1)
        runtime = runtime_dir(root)
        plain, compiled = [root / "task", runtime], [root / "task-pyc", runtime]
        handlers = {}
        for module in HANDLERS:
            handlers[module] = {"source": import_ms(module, plain, runs),
                                "precompiled": import_ms(module, compiled, runs),
                                "self_ms_by_package": importtime_by_package(module, plain)}
        # A function's whole init: the module imported with ``_HANDLER`` naming it, so
        # its own step (and only that) is imported too.
        pipeline = import_module("amiforge.handlers.pipeline")
        functions = {name: import_ms("amiforge.handlers.pipeline", plain, runs,
                                     handler=f"amiforge.handlers.pipeline.{name}")
                     for name in sorted(pipeline.HANDLERS)}
        boto3_only = import_ms("boto3", plain, runs)
        interpreter = import_ms("json", plain, runs)
    return {"benchmark": "bundle",
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        "platform": platform.platform(),
                        "load_1_5_15_start": [round(x, 2) for x in load_start],
                        "load_1_5_15_end": [round(x, 2) for x in os.getloadavg()]},
            "runs": runs, "bundle": {"sha256": bundle.sha256, **sizes(bundle.data)},
            "import": {"handlers": handlers, "pipeline_functions": functions,
                       "pipeline_function_max_ms": max(f["median_ms"]
                                                       for f in functions.values()),
                       "boto3_only": boto3_only,
                       "json_only_floor": interpreter}}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5), indent=2))
