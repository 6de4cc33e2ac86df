"""Issue 15/17 journeys on a stack of their own: a deploy keeps the settings it was not
told to change; destroy keeps the data and a later deploy of the same name carries on."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner, Result

from amiforge.cli.main import cli
from amiforge.deploy import stack as stack_api

pytestmark = pytest.mark.e2e


def runner_for(local_cloud: Any, stack: str) -> Callable[..., Result]:
    def run(*args: str, output: str = "json", input: str | None = None) -> Result:
        return CliRunner().invoke(cli, ["--endpoint-url", local_cloud.endpoint, "--region",
                                        local_cloud.region, "--stack", stack, "--output",
                                        output, *args], input=input, catch_exceptions=False)
    return run


def parameters(aws: Any, stack: str) -> dict[str, str]:
    described = stack_api.describe_stack(aws, stack)
    assert described is not None
    return {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}


def test_deploy_keeps_values_not_given_and_reset_returns_to_defaults(
        local_cloud: Any, aws: Any) -> None:
    run = runner_for(local_cloud, "amiforge-params")
    first = run("deploy", "-p", "SecondsPerMinute=1", "-p", "PollSeconds=1")
    assert first.exit_code == 0, first.output
    assert {"parameter": "PollSeconds", "old": None, "new": "1"} in json.loads(
        first.stdout)["parameter_changes"]

    second = run("deploy", "-p", "DetectSchedule=rate(6 hours)")
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["parameter_changes"] == [
        {"parameter": "DetectSchedule", "old": "rate(1 hour)", "new": "rate(6 hours)"}]
    kept = parameters(aws, "amiforge-params")
    assert (kept["SecondsPerMinute"], kept["PollSeconds"], kept["DetectSchedule"]) == (
        "1", "1", "rate(6 hours)")

    text = run("deploy", "--reset-parameters", "-p", "PollSeconds=1", output="text")
    assert text.exit_code == 0, text.output
    assert "parameter SecondsPerMinute: 1 -> 60" in text.stdout
    assert "parameter DetectSchedule: rate(6 hours) -> rate(1 hour)" in text.stdout
    reset = parameters(aws, "amiforge-params")
    assert (reset["SecondsPerMinute"], reset["PollSeconds"], reset["DetectSchedule"]) == (
        "60", "1", "rate(1 hour)")

    unknown = run("deploy", "-p", "PolSeconds=1", output="text")
    assert unknown.exit_code == 2
    assert "-p PolSeconds: the stack template has no such parameter" in unknown.output
