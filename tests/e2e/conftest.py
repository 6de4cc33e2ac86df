"""End-to-end fixtures: one deployed stack per test process, recipes written on the fly.

Commands run through the real CLI entry point (click's ``cli`` group) in-process, so a
journey costs milliseconds of CLI start-up while the stack's Lambdas still run from the
bundle in the local cloud's runtime.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from amiforge.aws.session import AwsContext
from amiforge.cli.main import cli
from amiforge.deploy import stack as stack_api
from amiforge.ops.connect import connect
from amiforge.ops.demo import LOCAL_STACK_PARAMETERS
from amiforge.steps.env import StepEnv

STACK = "amiforge-e2e"
# The demo's parameters, with detection, sweeping and pruning left to the tests: a
# schedule firing mid-test (the chaos tier speeds the worker's clock up for a while)
# would start or sweep what a test is about to do itself. Tests that show the scheduled
# functions invoke them directly; schedules firing is the local cloud's own test.
E2E_STACK_PARAMETERS = {**LOCAL_STACK_PARAMETERS, "DetectSchedule": "rate(30 days)",
                        "SweepSchedule": "rate(30 days)", "PruneSchedule": "rate(30 days)",
                        # base parameters the e2e recipes may use besides /aws/service/
                        "BaseParameterPrefixes": "/amiforge-e2e/"}


@pytest.fixture(scope="session")
def aws(local_cloud: Any) -> AwsContext:
    return AwsContext(region=local_cloud.region, endpoint_url=local_cloud.endpoint)


@pytest.fixture(scope="session")
def stack(local_cloud: Any, aws: AwsContext) -> StepEnv:
    stack_api.deploy(aws, STACK, E2E_STACK_PARAMETERS)
    return connect(aws, STACK)


@pytest.fixture()
def amiforge(local_cloud: Any, stack: StepEnv) -> Callable[..., Result]:
    """Run ``amiforge --endpoint-url ... --stack amiforge-e2e ARGS``; returns click's Result."""

    def run(*args: str, output: str = "text") -> Result:
        runner = CliRunner()
        return runner.invoke(cli, ["--endpoint-url", local_cloud.endpoint, "--region",
                                   local_cloud.region, "--stack", STACK, "--output", output,
                                   *args], catch_exceptions=False)
    return run


@pytest.fixture()
def recipe_dir(tmp_path: Path) -> Callable[..., Path]:
    """Write a minimal Linux recipe NAME whose script is SCRIPT; returns its directory."""

    def write(name: str, script: str = "echo hello\n", *, retries: int = 0,
              timeout_minutes: int = 30, extra: str = "") -> Path:
        directory = tmp_path / "recipes"
        (directory / "scripts").mkdir(parents=True, exist_ok=True)
        (directory / "scripts" / f"{name}.sh").write_text("#!/bin/bash\n" + script)
        (directory / f"{name}.yaml").write_text(textwrap.dedent(f"""\
            name: {name}
            description: e2e recipe {name}
            base:
              ssm_parameter: /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64
            build:
              platform: linux
              user_data: scripts/{name}.sh
              instance_types: [t3.small, t3a.small]
              timeout_minutes: {timeout_minutes}
              retries: {retries}
            image:
              tags: {{team: e2e}}
            """) + extra)
        return directory

    return write


# -- the JSON contract (docs/cli.md) ---------------------------------------------------
CLI_DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
_EXAMPLE = re.compile(r"<!-- json: (?P<name>[^>]+?) -->\s*```json\n(?P<body>.*?)```", re.S)


def documented_shapes() -> dict[str, Any]:
    """docs/cli.md's JSON example of each command, by the name in its ``<!-- json: -->``."""
    return {m["name"]: json.loads(m["body"]) for m in _EXAMPLE.finditer(CLI_DOC.read_text())}


def key_mismatches(name: str, documented: dict[str, Any], actual: Any) -> list[str]:
    """How ``actual`` differs in keys from ``documented``: the top level, and each item of
    a list whose documented items are objects (an empty actual list has none to compare)."""
    if not isinstance(actual, dict):
        return [f"{name}: not a JSON object but {type(actual).__name__}"]
    problems = []
    if set(actual) != set(documented):
        problems.append(f"{name}: keys {sorted(set(actual) ^ set(documented))} differ "
                        "from docs/cli.md")
    for key, example in documented.items():
        if isinstance(example, list) and example and isinstance(example[0], dict):
            for item in actual.get(key) or []:
                if set(item) != set(example[0]):
                    problems.append(f"{name}: {key}[] keys "
                                    f"{sorted(set(item) ^ set(example[0]))} differ")
    return problems


@pytest.fixture(scope="session")
def cli_shapes() -> dict[str, Any]:
    return documented_shapes()


@pytest.fixture(scope="session")
def shape_problems(cli_shapes: dict[str, Any]) -> Callable[[str, Any], list[str]]:
    """``shape_problems(name, output)``: how ``output`` differs from docs/cli.md's ``name``."""
    return lambda name, actual: key_mismatches(name, cli_shapes[name], actual)
