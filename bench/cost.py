"""Benchmark: what one build costs on AWS in Step Functions, Lambda and EventBridge,
before issue 23's work and now, from measured figures and AWS's published prices.

Prints one JSON object. Nothing here is measured anew; it is arithmetic over:

* **before**: today's main at commit 0007890 (:data:`BEFORE`, each figure with where it
  was measured);
* **after**: ``bench/results.json`` (or the file named as the first argument) as it is
  when this runs, so figures other work lowers are picked up as soon as they are written;
* the template: the per-build functions' memory and architecture, ``PollSeconds``.

Both are priced for a build whose image takes :data:`SNAPSHOT_SECONDS` to become
available, as on AWS (the local cloud makes images available at once). Where
``transitions_per_build_10min_snapshot`` is measured it is used; where it is not, the
build still polls, and the figure is derived: the no-wait transitions plus one poll
(WaitForImage, AwaitImage, ImageReady?: 3 transitions and 1 invocation) every
``PollSeconds`` of the snapshot. Lambda duration is the local cloud's measured warm
Lambda time per build (``lambda_ms_per_build_warm``, from ``bench/pipeline.py``): on a
loaded 2-core machine against an emulator, so an upper bound of what AWS would bill.

    python bench/cost.py [RESULTS_JSON]
"""

from __future__ import annotations

import json
import math
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent

# us-east-1 list prices from AWS's pricing pages, checked on 2026-12-02 against copies of them:
PRICES_READ = "2026-12-02"
# https://aws.amazon.com/step-functions/pricing/ (Standard Workflows, US East (N. Virginia))
STEP_FUNCTIONS_PER_TRANSITION = 0.025 / 1000
# https://aws.amazon.com/lambda/pricing/ (requests; duration, first tier, per architecture)
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
LAMBDA_PER_GB_SECOND = {"arm64": 0.0000133334, "x86_64": 0.0000166667}
# https://aws.amazon.com/eventbridge/pricing/ (events from AWS services, such as EC2's
# state-change events, are free; custom events published with PutEvents are $1.00/million)
EVENTBRIDGE_PER_CUSTOM_EVENT = 1.00 / 1_000_000
PRICE_SOURCES = {"step_functions": "https://aws.amazon.com/step-functions/pricing/",
                 "lambda": "https://aws.amazon.com/lambda/pricing/",
                 "eventbridge": "https://aws.amazon.com/eventbridge/pricing/"}

SNAPSHOT_SECONDS = 600  # the "10-minute snapshot"
POLL_TRANSITIONS, POLL_INVOCATIONS = 3, 1  # WaitForImage, AwaitImage (Lambda), ImageReady?
# Scheduled functions: not a per-build cost.
NOT_PER_BUILD = frozenset({"detect", "prune", "sweep"})

BEFORE: dict[str, Any] = {
    # bench/results.json at commit 0007890 (bench/pipeline.py, image available at once).
    "transitions_per_build_no_image_wait": 18,
    "lambda_invocations_per_build": 13.0,
    # deploy/template.yaml's PollSeconds default at 0007890.
    "poll_seconds": 15,
    # bench/pipeline.py 1 2 on 0007890's pipeline, 2026-12-02, load 9.7 -> 11.2: the warm
    # build's Lambda time, and AwaitImage's warm median (one poll).
    "lambda_ms_per_build_warm": 3099.3,
    "lambda_ms_image_poll_warm": 25.3,
    # deploy/template.yaml at 0007890: every per-build function 256 MB, arm64.
    "memory_mb": 256,
    "architecture": "arm64",
}
# amiforge publishes no events of its own (no PutEvents in src/): its rules see EC2's.
CUSTOM_EVENTS_PER_BUILD = 0


def polls(snapshot_seconds: float, poll_seconds: float) -> int:
    """Polls after the first check until an image pending ``snapshot_seconds`` is seen
    available, checking every ``poll_seconds``."""
    if snapshot_seconds < 0 or poll_seconds <= 0:
        raise ValueError(f"snapshot of {snapshot_seconds} s polled every {poll_seconds} s: "
                         "the snapshot time cannot be negative, the poll interval must be > 0")
    return math.ceil(snapshot_seconds / poll_seconds)


def snapshot_build(figures: dict[str, Any], poll_seconds: float,
                   snapshot_seconds: float = SNAPSHOT_SECONDS) -> dict[str, Any]:
    """Transitions, invocations and Lambda milliseconds of one build whose image takes
    ``snapshot_seconds``, from ``figures`` (results.json's keys, or :data:`BEFORE`), each
    with how it was arrived at."""
    measured = figures.get("transitions_per_build_10min_snapshot")
    if measured is not None and snapshot_seconds == SNAPSHOT_SECONDS:
        transitions = float(measured)
        invocations = float(figures.get("lambda_invocations_per_build_10min_snapshot",
                                        figures["lambda_invocations_per_build"]))
        extra_ms = 0.0
        how = "transitions_per_build_10min_snapshot (measured)"
    else:
        n = polls(snapshot_seconds, poll_seconds)
        base = figures["transitions_per_build_no_image_wait"]
        transitions = float(base + n * POLL_TRANSITIONS)
        invocations = float(figures["lambda_invocations_per_build"] + n * POLL_INVOCATIONS)
        poll_ms = figures.get("lambda_ms_image_poll_warm")
        extra_ms = n * float(poll_ms) if poll_ms is not None else 0.0
        how = (f"{base} transitions with no image wait + {n} polls ({snapshot_seconds:g} s / "
               f"{poll_seconds:g} s) x {POLL_TRANSITIONS}; invocations "
               f"{figures['lambda_invocations_per_build']:g} + {n}")
    ms = figures.get("lambda_ms_per_build_warm")
    return {"transitions": transitions, "invocations": invocations,
            "lambda_ms": None if ms is None else float(ms) + extra_ms, "how": how}


def cost(transitions: float, invocations: float, lambda_ms: float | None, memory_mb: int,
         architecture: str, custom_events: float = 0) -> dict[str, Any]:
    """The bill of one build, line by line with its arithmetic, and the total in USD.
    Lambda's duration line is left out (None) when no duration was measured."""
    if architecture not in LAMBDA_PER_GB_SECOND:
        raise ValueError(f"architecture {architecture!r}: priced are "
                         f"{', '.join(sorted(LAMBDA_PER_GB_SECOND))}")
    gb = memory_mb / 1024
    lines: dict[str, Any] = {
        "step_functions": _line(transitions, STEP_FUNCTIONS_PER_TRANSITION, "transitions"),
        "lambda_requests": _line(invocations, LAMBDA_PER_REQUEST, "requests"),
        "lambda_duration": None if lambda_ms is None else _line(
            lambda_ms / 1000 * gb, LAMBDA_PER_GB_SECOND[architecture],
            f"GB-s ({lambda_ms:g} ms x {gb:g} GB, {architecture})"),
        # EC2's state-change events reach the rules as AWS service events: free, however
        # many; only events amiforge published itself would be billed.
        "eventbridge": _line(custom_events, EVENTBRIDGE_PER_CUSTOM_EVENT,
                             "custom events (EC2's own events: free)"),
    }
    total = sum(line["usd"] for line in lines.values() if line is not None)
    return {"lines": lines, "total_usd": total}


def _line(quantity: float, price: float, unit: str) -> dict[str, Any]:
    return {"quantity": quantity, "unit_price_usd": price, "usd": quantity * price,
            "arithmetic": f"{quantity:g} {unit} x ${price:g}"}


def function_memory(template: dict[str, Any]) -> tuple[int, str]:
    """(memory MB, architecture) to price the per-build functions at: the largest memory
    among them, and arm64 only if every one of them is arm64 (else x86_64's dearer price)."""
    memories, architectures = [], set()
    for resource in template["Resources"].values():
        props = resource.get("Properties") or {}
        handler = str(props.get("Handler") or "")
        if resource.get("Type") != "AWS::Lambda::Function" or not handler.startswith(
                "amiforge.handlers.pipeline.") or handler.rsplit(".", 1)[1] in NOT_PER_BUILD:
            continue
        memories.append(int(props.get("MemorySize", 128)))
        architectures.update(props.get("Architectures") or ["x86_64"])
    if not memories:
        raise ValueError("the template has no per-build function (Handler "
                         "amiforge.handlers.pipeline.*) to price")
    return max(memories), "arm64" if architectures == {"arm64"} else "x86_64"


class _AnyTag(yaml.SafeLoader):
    """The template's plain structure; intrinsic tags (!Ref, !Sub ...) become None."""


_AnyTag.add_multi_constructor("!", lambda _loader, _suffix, _node: None)


def template() -> dict[str, Any]:
    text = resources.files("amiforge.deploy").joinpath("template.yaml").read_text()
    parsed: dict[str, Any] = yaml.load(text, Loader=_AnyTag)  # noqa: S506 - a SafeLoader
    return parsed


def main(results_path: Path) -> dict[str, Any]:
    try:
        after_figures = json.loads(results_path.read_text())
    except (OSError, ValueError) as err:
        raise SystemExit(f"{results_path}: cannot read the measured figures ({err}); run "
                         "`python bench/results.py` first, or name a results JSON") from err
    needed = ["lambda_invocations_per_build"] + (
        [] if "transitions_per_build_10min_snapshot" in after_figures
        else ["transitions_per_build_no_image_wait"])
    missing = [k for k in needed if k not in after_figures]
    if missing:
        raise SystemExit(f"{results_path}: no {', '.join(missing)}; run "
                         "`python bench/results.py pipeline.py` first")
    parsed = template()
    memory_mb, architecture = function_memory(parsed)
    poll_seconds = float(parsed["Parameters"]["PollSeconds"]["Default"])
    before = snapshot_build(BEFORE, BEFORE["poll_seconds"])
    after = snapshot_build(after_figures, poll_seconds)
    before_cost = cost(before["transitions"], before["invocations"], before["lambda_ms"],
                       BEFORE["memory_mb"], BEFORE["architecture"], CUSTOM_EVENTS_PER_BUILD)
    after_cost = cost(after["transitions"], after["invocations"], after["lambda_ms"],
                      memory_mb, architecture, CUSTOM_EVENTS_PER_BUILD)
    return {"benchmark": "cost", "snapshot_seconds": SNAPSHOT_SECONDS,
            "prices": {"read": PRICES_READ, "region": "us-east-1", "sources": PRICE_SOURCES,
                       "step_functions_per_transition": STEP_FUNCTIONS_PER_TRANSITION,
                       "lambda_per_request": LAMBDA_PER_REQUEST,
                       "lambda_per_gb_second": LAMBDA_PER_GB_SECOND,
                       "eventbridge_per_custom_event": EVENTBRIDGE_PER_CUSTOM_EVENT},
            "before": {**before, "memory_mb": BEFORE["memory_mb"],
                       "architecture": BEFORE["architecture"], **before_cost},
            "after": {**after, "memory_mb": memory_mb, "architecture": architecture,
                      "poll_seconds": poll_seconds, **after_cost},
            "cost_per_build_before_usd": round(before_cost["total_usd"], 7),
            "cost_per_build_after_usd": round(after_cost["total_usd"], 7)}


if __name__ == "__main__":
    path = Path(sys.argv[1]) if sys.argv[1:] else HERE / "results.json"
    print(json.dumps(main(path), indent=2))
