"""A hostile recipe through the real CLI and the deployed stack: a secret base parameter
is never echoed, a parameter outside the allowed prefixes is refused before anything is
stored, and a build log's secrets are masked in the catalog and in `history`."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from amiforge.core.recipes import load_recipes
from amiforge.ops.publish import publish as publish_unlinted

pytestmark = pytest.mark.e2e
SECRET = "hunter2-e2e-Pr0d/AKIAIOSFODNN7EXAMPLE"


def _recipe(tmp_path: Path, name: str, parameter: str) -> Path:
    directory = tmp_path / "recipes"
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.yaml").write_text(textwrap.dedent(f"""\
        name: {name}
        base: {{ssm_parameter: {parameter}}}
        build: {{script: echo hi}}
        """))
    return directory


def _everything(aws: Any, stack: Any) -> str:
    db = aws.client("dynamodb")
    tables = [db.scan(TableName=t)["Items"] for t in (stack.catalog_table, stack.recipes_table)]
    sfn = aws.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=stack.state_machine_arn)["executions"]
    inputs = [sfn.describe_execution(executionArn=e["executionArn"]).get("input", "")
              for e in executions]
    return json.dumps([tables, inputs])


def test_a_secret_base_parameter_is_never_echoed(amiforge: Any, aws: Any, stack: Any,
                                                 tmp_path: Path) -> None:
    name = f"sec-{uuid.uuid4().hex[:6]}"
    parameter = f"/amiforge-e2e/{name}/password"
    aws.client("ssm").put_parameter(Name=parameter, Value=SECRET, Type="String")
    directory = _recipe(tmp_path, name, parameter)

    planned = amiforge("plan", str(directory), output="json")
    assert planned.exit_code == 0, planned.output
    [decision] = json.loads(planned.stdout)["decisions"]
    assert (decision["action"], decision["reason"], decision["base_ami"]) == (
        "skip", "base not found", None)
    assert decision["detail"].startswith(f"SSM parameter {parameter} does not hold an AMI id")

    published = amiforge("publish", str(directory), output="json")
    assert published.exit_code == 0, published.output  # stored; detection skips it
    status = amiforge("status", output="json")
    outputs = [planned.output, published.output, status.output, _everything(aws, stack)]
    for text in outputs:
        assert SECRET not in text and "hunter2" not in text and "AKIAIOSFODNN7" not in text
    assert stack.catalog.history(name) == []  # nothing was built from it


def test_a_parameter_outside_the_allowed_prefixes_is_refused_before_any_write(
        amiforge: Any, stack: Any, tmp_path: Path) -> None:
    name = f"out-{uuid.uuid4().hex[:6]}"
    directory = _recipe(tmp_path, name, "/prod/db/password")
    published = amiforge("publish", str(directory))
    assert published.exit_code == 2
    [line] = published.stderr.splitlines()
    assert line.startswith(f"amiforge: error: {directory / (name + '.yaml')}: "
                           "base.ssm_parameter: '/prod/db/password' is not under "
                           "/aws/service/ or the stack's BaseParameterPrefixes (/amiforge-e2e/)")
    assert stack.store.current(name) is None


def test_secrets_in_a_build_log_are_masked_in_the_catalog_and_history(
        amiforge: Any, recipe_dir: Any, stack: Any) -> None:
    # A bash syntax error: the simulated builder prints the offending line, as bash does.
    # `amiforge publish` refuses such a script now (bash -n), so it is published as a
    # client that does not lint would (an older amiforge, another tool).
    directory = recipe_dir("leaky", "export DB_PASSWORD=hunter2-leak )\n")
    assert amiforge("publish", str(directory)).exit_code == 2
    publish_unlinted(stack, load_recipes(directory), None)
    result = amiforge("build", "--wait", "leaky", output="json")
    assert result.exit_code == 1
    [build] = json.loads(result.stdout)["builds"]
    record = stack.catalog.get("leaky", build["build_id"])
    assert "DB_PASSWORD=****" in record["console_tail"]
    history = amiforge("history", "leaky")
    for text in (record["console_tail"], history.stdout, result.stdout):
        assert "hunter2-leak" not in text
