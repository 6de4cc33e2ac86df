"""Global options as AWS CLI users type them: before or after the command, --profile,
AWS_REGION, and errors as JSON under --output json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from amiforge.cli.main import GlobalOptionsGroup, cli

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "recipes"


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


@pytest.mark.parametrize("args", [
    ["--output", "json", "validate", str(EXAMPLES)],
    ["validate", str(EXAMPLES), "--output", "json"],
    ["validate", "--output=json", str(EXAMPLES)],
])
def test_output_option_before_or_after_the_command(args: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert [r["name"] for r in json.loads(result.stdout)["recipes"]][:1] == ["ecs-host"]


def test_a_commands_own_option_of_the_same_name_is_left_to_it() -> None:
    hoist = GlobalOptionsGroup._hoist
    # `latest` has no --region of its own: the global one is moved in front.
    assert hoist(cli, cli.make_context("amiforge", ["status"]),
                 ["latest", "web", "--region", "eu-west-1"]) == [
        "--region", "eu-west-1", "latest", "web"]
    # After `--`, nothing is an option.
    assert hoist(cli, cli.make_context("amiforge", ["status"]),
                 ["validate", "--", "--output"]) == ["validate", "--", "--output"]


def test_errors_are_json_on_stderr_under_output_json(tmp_path: Path) -> None:
    result = invoke("validate", str(tmp_path / "missing"), "--output", "json")
    assert result.exit_code == 2
    assert result.stdout == ""
    error = json.loads(result.stderr)
    assert error["exit_code"] == 2
    assert "missing" in error["error"]


def test_recipe_problems_are_listed_in_the_json_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: Bad Name\n")
    result = invoke("--output", "json", "validate", str(tmp_path))
    assert result.exit_code == 2
    error = json.loads(result.stderr)
    assert error["problems"] and all("bad.yaml" in p for p in error["problems"])


def test_an_unknown_profile_is_one_line_exit_2() -> None:
    result = invoke("--profile", "nope-not-configured", "status",
                    env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 2, result.output
    assert "profile 'nope-not-configured' is not configured" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("endpoint", "says"), [
    ("127.0.0.1:4566", "not an http(s) URL"),
    ("htp://x", "not an http(s) URL"),
    ("http://127.0.0.1:port", "port that is not a number"),
])
def test_malformed_endpoints_are_refused_at_once(endpoint: str, says: str) -> None:
    result = invoke("--endpoint-url", endpoint, "status")
    assert result.exit_code == 2, result.output
    assert says in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_region_that_is_no_region_name_is_refused() -> None:
    result = invoke("--region", "mars-1", "status",
                    env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 2, result.output
    assert "'mars-1' is not an AWS region name" in result.stderr


def test_aws_region_alone_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    seen = {}

    @cli.command("_region_probe", hidden=True)
    def probe() -> None:
        import click

        from amiforge.cli.context import CliContext
        seen["region"] = click.get_current_context().find_object(CliContext).region

    try:
        result = invoke("_region_probe")
    finally:
        cli.commands.pop("_region_probe")
    assert result.exit_code == 0, result.output
    assert seen["region"] == "eu-west-3"
