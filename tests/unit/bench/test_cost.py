"""The cost of one build (``bench/cost.py``): polls, the priced lines, the template's
memory, and the before/after figures picked from a results file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import cost  # noqa: E402


def test_a_ten_minute_snapshot_polled_every_15_s_is_40_polls() -> None:
    assert cost.polls(600, 15) == 40
    assert cost.polls(600, 60) == 10
    assert cost.polls(601, 15) == 41  # the image is seen on the poll after it is ready
    assert cost.polls(0, 15) == 0
    with pytest.raises(ValueError, match="poll interval must be > 0"):
        cost.polls(600, 0)


def test_a_polled_build_adds_three_transitions_and_an_invocation_a_poll() -> None:
    figures = {"transitions_per_build_no_image_wait": 18, "lambda_invocations_per_build": 13,
               "lambda_ms_per_build_warm": 3000.0, "lambda_ms_image_poll_warm": 25.0}
    build = cost.snapshot_build(figures, poll_seconds=15)
    assert (build["transitions"], build["invocations"]) == (18 + 40 * 3, 13 + 40)
    assert build["lambda_ms"] == 3000 + 40 * 25
    assert "40 polls (600 s / 15 s)" in build["how"]


def test_a_measured_snapshot_build_is_taken_as_measured() -> None:
    figures = {"transitions_per_build_10min_snapshot": 19, "lambda_invocations_per_build": 6,
               "transitions_per_build_no_image_wait": 17, "lambda_ms_per_build_warm": 900}
    build = cost.snapshot_build(figures, poll_seconds=15)
    assert (build["transitions"], build["invocations"], build["lambda_ms"]) == (19, 6, 900)
    assert cost.snapshot_build({**figures, "lambda_invocations_per_build_10min_snapshot": 7},
                               15)["invocations"] == 7
    # No duration measured: none priced, never guessed.
    del figures["lambda_ms_per_build_warm"]
    assert cost.snapshot_build(figures, 15)["lambda_ms"] is None


def test_the_bill_is_each_quantity_times_its_published_price() -> None:
    bill = cost.cost(138, 53, 4000.0, 256, "arm64")
    lines = bill["lines"]
    assert lines["step_functions"]["usd"] == pytest.approx(138 * 0.000025)
    assert lines["lambda_requests"]["usd"] == pytest.approx(53 * 0.0000002)
    assert lines["lambda_duration"]["quantity"] == pytest.approx(4.0 * 0.25)  # GB-s
    assert lines["lambda_duration"]["usd"] == pytest.approx(1.0 * 0.0000133334)
    assert lines["eventbridge"]["usd"] == 0
    assert bill["total_usd"] == pytest.approx(0.00345 + 0.0000106 + 0.0000133334)
    assert lines["step_functions"]["arithmetic"] == "138 transitions x $2.5e-05"
    x86 = cost.cost(0, 0, 1000.0, 1024, "x86_64")
    assert x86["total_usd"] == pytest.approx(0.0000166667)
    assert cost.cost(1, 1, None, 256, "arm64")["lines"]["lambda_duration"] is None
    assert cost.cost(0, 0, None, 256, "arm64", custom_events=2)["total_usd"] == 2e-6
    with pytest.raises(ValueError, match="architecture 'sparc'"):
        cost.cost(1, 1, 1.0, 256, "sparc")


def _function(handler: str, memory: int, arch: str | None = "arm64") -> dict[str, Any]:
    props: dict[str, Any] = {"Handler": handler, "MemorySize": memory}
    if arch:
        props["Architectures"] = [arch]
    return {"Type": "AWS::Lambda::Function", "Properties": props}


def test_per_build_functions_are_priced_at_their_largest_memory() -> None:
    template = {"Resources": {
        "A": _function("amiforge.handlers.pipeline.launch", 256),
        "B": _function("amiforge.handlers.pipeline.finish", 384),
        "D": _function("amiforge.handlers.pipeline.detect", 512),  # scheduled: not per build
        "L": _function("amiforge.handlers.latest_ami.handler", 1024),
        "T": {"Type": "AWS::DynamoDB::Table", "Properties": {}}}}
    assert cost.function_memory(template) == (384, "arm64")
    template["Resources"]["C"] = _function("amiforge.handlers.pipeline.cleanup", 128, None)
    assert cost.function_memory(template) == (384, "x86_64")  # one x86 function: dearer
    with pytest.raises(ValueError, match="no per-build function"):
        cost.function_memory({"Resources": {"L": template["Resources"]["L"]}})


def test_the_deployed_template_prices_at_256_mb_arm64() -> None:
    # The figure docs/performance.md quotes; fails if the template's functions change.
    assert cost.function_memory(cost.template()) == (256, "arm64")


def test_after_follows_the_results_file_and_before_stays_put(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps({
        "transitions_per_build_10min_snapshot": 20, "lambda_invocations_per_build": 6,
        "transitions_per_build_no_image_wait": 16, "lambda_ms_per_build_warm": 1200}))
    report = cost.main(results)
    assert (report["after"]["transitions"], report["after"]["invocations"]) == (20, 6)
    assert report["cost_per_build_after_usd"] == pytest.approx(
        20 * 0.000025 + 6 * 0.0000002 + 1.2 * 0.25 * 0.0000133334, abs=1e-7)
    assert (report["before"]["transitions"], report["before"]["invocations"]) == (138, 53)
    assert report["cost_per_build_before_usd"] == pytest.approx(
        138 * 0.000025 + 53 * 0.0000002 + (3099.3 + 40 * 25.3) / 1000 * 0.25 * 0.0000133334,
        abs=1e-7)


def test_a_results_file_without_the_build_figures_is_refused_by_name(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"cpus": 2}))
    with pytest.raises(SystemExit, match="no lambda_invocations_per_build, "
                                         "transitions_per_build_no_image_wait"):
        cost.main(results)
    with pytest.raises(SystemExit, match="cannot read the measured figures"):
        cost.main(tmp_path / "missing.json")
