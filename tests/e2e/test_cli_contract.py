"""docs/cli.md is the JSON contract: every command is documented with a JSON example, and
every command run with ``--output json`` prints the keys its example shows (top level and
one level into list items). Unknown recipe names and bad ``--limit`` values exit 2 alike,
through the installed console script.

To extend: document a new command (or a new key) in docs/cli.md under a
``<!-- json: NAME -->`` marker and add its run to ``test_each_command_prints_its_documented_keys``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from amiforge.cli.main import cli
from amiforge.localcloud.testing import wait_for

pytestmark = pytest.mark.e2e
AMIFORGE = str(Path(sys.executable).with_name("amiforge"))
STACK = "amiforge-e2e"
HANG = "# amiforge-sim: hang\nsleep infinity\n"
# Fields that hold maps keyed by data (output names, regions, variables, actions).
MAPS = {"outputs", "images", "env", "summary"}
INTERNAL = {"task_token", "available_recipe", "build_key", "record"}
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


def leaf_commands(group: click.Group = cli, prefix: str = "") -> Iterator[str]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from leaf_commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}"


def bad_keys(value: Any, where: str = "") -> list[str]:
    """Keys anywhere in ``value`` that are not snake_case, or are internal fields."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if not SNAKE.match(key) or key in INTERNAL:
                found.append(f"{where}{key}")
            if key not in MAPS:
                found += bad_keys(item, f"{where}{key}.")
    elif isinstance(value, list):
        for item in value:
            found += bad_keys(item, where)
    return found


def test_every_command_has_a_documented_json_shape(cli_shapes: dict[str, Any]) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    for name in leaf_commands():
        assert f"### `amiforge {name}" in doc, f"docs/cli.md has no section for {name}"
        assert name in cli_shapes, f"docs/cli.md has no JSON example of {name}"
    for name, shape in cli_shapes.items():
        assert shape.get("version") == 1, name
        assert bad_keys(shape) == [], (name, bad_keys(shape))


def test_the_key_comparison_catches_a_missing_or_extra_key(shape_problems: Any) -> None:
    latest = {"version": 1, "recipe": "r", "image_id": "ami-1", "image_name": "n",
              "build_id": "r-1", "creation_date": "d", "region": "us-east-1"}
    assert shape_problems("latest", latest) == []
    assert shape_problems("latest", {**latest, "ImageId": "ami-1"})
    history = {"version": 1, "recipe": "r", "builds": [{"build_id": "r-1"}]}
    assert any("builds[]" in p for p in shape_problems("history", history))


def run_json(local_cloud: Any, *args: str, stack: str = STACK) -> Any:
    result = CliRunner().invoke(cli, ["--endpoint-url", local_cloud.endpoint, "--region",
                                      local_cloud.region, "--stack", stack, "--output",
                                      "json", *args], catch_exceptions=False)
    assert result.exit_code == 0, (args, result.output)
    return json.loads(result.stdout)


def test_each_command_prints_its_documented_keys(local_cloud: Any, stack: Any,
                                                 recipe_dir: Any, shape_problems: Any) -> None:
    name, hung = f"shape-{uuid.uuid4().hex[:6]}", f"shape-hang-{uuid.uuid4().hex[:6]}"
    gated = f"shape-gated-{uuid.uuid4().hex[:6]}"  # release.approval: manual
    recipe_dir(gated, extra="release:\n  approval: manual\n")
    directory = recipe_dir(name)
    out: dict[str, Any] = {}
    out["validate"] = run_json(local_cloud, "validate", str(directory))
    out["plan"] = run_json(local_cloud, "plan", str(directory))
    out["publish --wait"] = run_json(local_cloud, "publish", "--wait", str(directory))
    out["publish"] = run_json(local_cloud, "publish", str(directory))
    out["build"] = run_json(local_cloud, "build", name)
    out["build --wait"] = run_json(local_cloud, "build", "--wait", "--rebuild", name)
    out["detect"] = run_json(local_cloud, "detect")
    out["status"] = run_json(local_cloud, "status")
    out["history"] = run_json(local_cloud, "history", name)
    out["latest"] = run_json(local_cloud, "latest", name)
    out["prune"] = run_json(local_cloud, "prune", "--dry-run", name)
    out["fleet"] = run_json(local_cloud, "fleet", name)
    out["sweep"] = run_json(local_cloud, "sweep", "--dry-run")
    out["rollback"] = run_json(local_cloud, "rollback", name, "--reason", "contract")
    out["release"] = run_json(local_cloud, "release", out["rollback"]["revoked"][0]["build_id"])
    run_json(local_cloud, "publish", "--no-detect", str(recipe_dir(hung, HANG,
                                                                   timeout_minutes=600)))
    run_json(local_cloud, "build", hung)
    out["cancel"] = run_json(local_cloud, "cancel", hung)
    (waiting,) = [b for b in out["publish --wait"]["builds"] if b["recipe"] == gated]
    assert [a["build_id"] for a in out["status"]["awaiting_approval"]
            if a["recipe"] == gated] == [waiting["build_id"]]
    out["approve"] = run_json(local_cloud, "approve", waiting["build_id"])
    wait_for(lambda: stack.catalog.get(gated, waiting["build_id"])["status"] == "AVAILABLE",
             timeout=120, what="the approved build to be AVAILABLE")
    (again,) = run_json(local_cloud, "build", "--wait", "--rebuild", gated)["builds"]
    assert again["status"] == "AWAITING_APPROVAL"
    out["reject"] = run_json(local_cloud, "reject", again["build_id"], "--reason", "shape")
    out["retire"] = run_json(local_cloud, "retire", hung)
    out["local release-base"] = run_json(local_cloud, "local", "release-base", "--name",
                                         f"contract-{uuid.uuid4().hex[:6]}", "--owner", "self")

    # The runs saw real items, so list items were compared too.
    assert out["history"]["builds"] and out["history"]["builds"][0]["attempts"]
    assert out["publish --wait"]["builds"] and out["prune"]["decisions"]
    assert [b["status"] for b in out["build --wait"]["builds"]] == ["AVAILABLE"]
    assert out["rollback"]["revoked"] and out["release"]["latest"] is True
    assert out["latest"]["image_id"] == out["build --wait"]["builds"][0]["image_id"]
    problems = [p for command, data in out.items() for p in shape_problems(command, data)]
    assert problems == []
    assert [p for data in out.values() for p in bad_keys(data)] == []


def test_deploy_and_destroy_print_their_documented_keys(local_cloud: Any, stack: Any,
                                                        shape_problems: Any) -> None:
    other = f"amiforge-shape-{uuid.uuid4().hex[:6]}"
    deployed = run_json(local_cloud, "deploy", "-p", "DetectSchedule=rate(30 days)",
                        "-p", "SweepSchedule=rate(30 days)", "-p", "PruneSchedule=rate(30 days)",
                        stack=other)
    destroyed = run_json(local_cloud, "destroy", "--yes", stack=other)
    assert deployed["outputs"] and destroyed["deleted"] is True
    assert shape_problems("deploy", deployed) + shape_problems("destroy", destroyed) == []


def _json_document(lines: Iterator[str]) -> Any:
    """The next pretty-printed JSON object on a stream (it ends with a line "}")."""
    text = ""
    for line in lines:
        text += line
        if line.rstrip() == "}":
            return json.loads(text)
    raise AssertionError(f"no JSON object in {text!r}")


def test_local_up_prints_its_documented_keys(shape_problems: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT")}
    with subprocess.Popen([AMIFORGE, "--output", "json", "local", "up", "--port", "0"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          env=env) as proc:
        assert proc.stdout is not None
        try:
            lines = iter(proc.stdout.readline, "")
            listening = _json_document(lines)
            proc.send_signal(signal.SIGTERM)
            stopped = _json_document(lines)
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    assert listening["endpoint"].startswith("http://127.0.0.1:")
    assert shape_problems("local up", listening) == []
    assert shape_problems("local up (stopped)", stopped) == []


def console(local_cloud: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_ENDPOINT_URL": local_cloud.endpoint,
           "AWS_REGION": local_cloud.region, "AMIFORGE_STACK": STACK}
    return subprocess.run([AMIFORGE, *args], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("command", [
    ["history"], ["latest"], ["prune"], ["prune", "--dry-run"], ["cancel"], ["build"],
    ["build", "--wait"], ["retire"], ["rollback"], ["fleet"],
])
def test_an_unknown_recipe_exits_2_naming_it(local_cloud: Any, stack: Any,
                                             command: list[str]) -> None:
    unknown = f"nope-{uuid.uuid4().hex[:6]}"
    proc = console(local_cloud, *command, unknown)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    (line,) = proc.stderr.splitlines()
    assert line.startswith("amiforge: error: ") and f"'{unknown}'" in line, line
    assert proc.stdout == "" and "Traceback" not in proc.stderr


@pytest.mark.parametrize("limit", ["0", "-1", "x"])
def test_history_limit_must_be_at_least_one(local_cloud: Any, stack: Any, limit: str) -> None:
    proc = console(local_cloud, "history", "--limit", limit, "web")
    assert proc.returncode == 2, proc.stderr
    assert "--limit" in proc.stderr and "Traceback" not in proc.stderr


def test_history_limit_keeps_the_newest(amiforge: Any, recipe_dir: Any) -> None:
    name = f"limited-{uuid.uuid4().hex[:6]}"
    assert amiforge("publish", "--wait", str(recipe_dir(name))).exit_code == 0
    assert amiforge("build", "--wait", "--rebuild", name).exit_code == 0
    every = json.loads(amiforge("history", name, output="json").stdout)["builds"]
    one = json.loads(amiforge("history", "--limit", "1", name, output="json").stdout)["builds"]
    assert len(every) == 2 and one == every[:1]


def test_a_known_recipe_without_builds_is_not_unknown(amiforge: Any, recipe_dir: Any) -> None:
    name = f"unbuilt-{uuid.uuid4().hex[:6]}"
    assert amiforge("publish", "--no-detect", str(recipe_dir(name))).exit_code == 0
    shown = amiforge("history", name, output="json")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["builds"] == []
    latest = amiforge("latest", name)
    assert latest.exit_code == 2
    assert f"recipe '{name}' has no AVAILABLE image" in latest.stderr
    assert "not published" not in latest.stderr


@pytest.mark.parametrize("command", ["history", "latest"])
def test_a_name_that_cannot_be_a_recipe_exits_2_naming_it(local_cloud: Any, stack: Any,
                                                          command: str) -> None:
    proc = console(local_cloud, command, "Not_A_Recipe")
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert "'Not_A_Recipe' is not a valid recipe name" in line
