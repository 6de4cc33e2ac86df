"""Run the benchmarks and write their headline figures to ``bench/results.json``.

One flat JSON object (the keys of issue 23 the scripts can produce; a key whose script
failed or that nothing measures is left out, never guessed), also printed. Each script
runs in its own process, in a quick mode where it has one, so ``make bench`` stays
within about ten minutes on a 2-core machine:

====================  ==========================================================
script (arguments)    keys
====================  ==========================================================
prune.py              ``prune_calls_per_pruned_image`` (marginal, home region)
bundle.py 3           ``pipeline_handler_import_ms``, ``boto3_import_ms``,
                      ``pipeline_function_init_max_ms``
lambda_invoke.py 5    ``cold_invoke_speedup``
local_requests.py     ``local_request_cpu_ms_kept_connection``,
5 400                 ``local_request_cpu_ms_new_connection``,
                      ``local_request_cpu_ratio_new_over_kept``
detect.py             ``detect_calls_ratio_n1000``, ``detect_calls_per_day_n1`` ... ``_n1000``,
                      ``detect_crossover_recipes_vs_daily_check``, ``..._vs_hourly_check``
lookup.py 5           ``lookup_ratio_10k_amiforge_part`` (and its two times), ``..._end_to_end``
catalog_reads.py      ``status_items_read_10``, ``status_items_read_10000``
pipeline.py 1 2       ``lambda_invocations_per_build``, ``invocations_stop_to_create_image``,
                      ``transitions_per_build_no_image_wait``,
                      ``stop_to_create_image_warm_s``, ``stop_to_create_image_cold_s``,
                      ``lambda_ms_per_build_warm``, ``lambda_ms_image_poll_warm``
image_wait.py 10      ``transitions_per_build_10min_snapshot``,
                      ``transitions_per_build_image_ready_at_once``,
                      ``transitions_per_build_10min_snapshot_with_copy``
cost.py               ``cost_per_build_before_usd``, ``cost_per_build_after_usd``: run
                      last, over this run's figures merged into results.json
====================  ==========================================================

Times (``*_ms``, ``*_s``) are absolute wall-clock figures on whatever machine runs this,
and move with its load (``machine_load_1m``, read at the start and the end); counts and
ratios measured side by side do not.

    python bench/results.py [SCRIPT ...]      # default: all of the above

Naming scripts re-runs only those and updates their keys in the existing results.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "results.json"


def _prune(r: dict[str, Any]) -> dict[str, Any]:
    return {"prune_calls_per_pruned_image": r["prune_calls_per_pruned_image"]}


def _bundle(r: dict[str, Any]) -> dict[str, Any]:
    imports = r["import"]
    return {"pipeline_handler_import_ms":
            imports["handlers"]["amiforge.handlers.pipeline"]["source"]["median_ms"],
            "boto3_import_ms": imports["boto3_only"]["median_ms"],
            "pipeline_function_init_max_ms": imports["pipeline_function_max_ms"]}


def _lambda_invoke(r: dict[str, Any]) -> dict[str, Any]:
    return {"cold_invoke_speedup": r["cold_invoke_speedup"]}


def _local_requests(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in ("local_request_cpu_ms_kept_connection",
                              "local_request_cpu_ms_new_connection",
                              "local_request_cpu_ratio_new_over_kept")}


def _detect(r: dict[str, Any]) -> dict[str, Any]:
    (n1000,) = [s for s in r["results"] if s["recipes"] == 1000]
    per_day = r["per_day"]
    return {"detect_calls_ratio_n1000": n1000["total_call_ratio_detect_over_naive"],
            **{f"detect_calls_per_day_n{size['recipes']}": size["detect_calls_per_day"]
               for size in per_day["sizes"]},
            "detect_crossover_recipes_vs_daily_check":
                per_day["crossover_recipes_vs_daily_check"],
            "detect_crossover_recipes_vs_hourly_check":
                per_day["crossover_recipes_vs_hourly_check"]}


def _lookup(r: dict[str, Any]) -> dict[str, Any]:
    latest = r["latest"]
    small, large = latest["outside_emulator_ms"]["small"], latest["outside_emulator_ms"]["large"]
    figures = {"lookup_ratio_10k_end_to_end": latest["ratio"],
               "lookup_amiforge_part_ms_10": small, "lookup_amiforge_part_ms_10000": large}
    # amiforge's part (its code, HTTP, the client) cannot take under a millisecond: a
    # smaller remainder is the emulator clock's error, and a ratio over it means nothing.
    if small >= 1:
        figures["lookup_ratio_10k_amiforge_part"] = latest["ratio_outside_emulator"]
    else:
        print(f"lookup.py: amiforge's part at 10 records is {small} ms, not a "
              "measurement: lookup_ratio_10k_amiforge_part left out", file=sys.stderr)
    return figures


def _catalog_reads(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in ("status_items_read_10", "status_items_read_10000")}


def _pipeline(r: dict[str, Any]) -> dict[str, Any]:
    per_build = r["per_build"]
    stop = r["stop_to_create_image_s"]
    warm = [p["lambda_runtime"] for p in r["phases"] if p["label"].endswith("warm")]
    polls = [w["median_ms_by_handler"]["await_image"] for w in warm
             if "await_image" in w["median_ms_by_handler"]]
    return {"lambda_invocations_per_build": per_build["lambda_invocations_runtime"],
            "invocations_stop_to_create_image": per_build["invocations_stop_to_create_image"],
            "transitions_per_build_no_image_wait": per_build["state_transitions"],
            "stop_to_create_image_warm_s": stop["1_build_warm_median"],
            "stop_to_create_image_cold_s": stop["1_build_cold_median"],
            # Lambda time of a warm build, for bench/cost.py (the local cloud's: an upper bound).
            "lambda_ms_per_build_warm": statistics.median(w["lambda_ms_per_build"] for w in warm),
            **({"lambda_ms_image_poll_warm": statistics.median(polls)} if polls else {})}


def _cost(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in ("cost_per_build_before_usd", "cost_per_build_after_usd")}


def _image_wait(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in ("transitions_per_build_10min_snapshot",
                              "transitions_per_build_image_ready_at_once",
                              "transitions_per_build_10min_snapshot_with_copy")}


SCRIPTS: dict[str, tuple[list[str], Callable[[dict[str, Any]], dict[str, Any]]]] = {
    "prune.py": ([], _prune),
    "bundle.py": (["3"], _bundle),
    "lambda_invoke.py": (["5"], _lambda_invoke),
    "local_requests.py": (["5", "400"], _local_requests),
    "detect.py": ([], _detect),
    "lookup.py": (["5"], _lookup),
    "catalog_reads.py": ([], _catalog_reads),
    "pipeline.py": (["1", "2"], _pipeline),
    "image_wait.py": (["10"], _image_wait),
    "cost.py": ([], _cost),  # last: it prices the figures above (main() passes them)
}


def run(script: str, args: list[str]) -> dict[str, Any]:
    # From the repository root, with it on the path: some scripts use tests/helpers.py.
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    done = subprocess.run([sys.executable, str(HERE / script), *args], capture_output=True,
                          text=True, timeout=900, check=False, cwd=HERE.parent, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr[-1500:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main(only: list[str], previous: dict[str, Any] | None = None) -> dict[str, Any]:
    figures: dict[str, Any] = {"machine_load_1m": round(os.getloadavg()[0], 2),
                               "cpus": os.cpu_count()}
    for script, (args, pick) in SCRIPTS.items():
        if only and script not in only:
            continue
        start = time.perf_counter()
        try:
            if script == "cost.py":  # priced: this run's figures over the file's
                with tempfile.TemporaryDirectory() as tmp:
                    merged = Path(tmp) / "figures.json"
                    merged.write_text(json.dumps({**(previous or {}), **figures}))
                    figures.update(pick(run(script, [str(merged)])))
            else:
                figures.update(pick(run(script, args)))
        except Exception as err:  # left out, said why; never a made-up figure
            print(f"{script}: no figures ({type(err).__name__}: {err})", file=sys.stderr)
        print(f"{script}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    figures["machine_load_1m_end"] = round(os.getloadavg()[0], 2)
    return figures


if __name__ == "__main__":
    existing = json.loads(OUT.read_text()) if sys.argv[1:] and OUT.exists() else {}
    results = main(sys.argv[1:], existing)
    if sys.argv[1:] and OUT.exists():
        results = {**existing, **results}
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
