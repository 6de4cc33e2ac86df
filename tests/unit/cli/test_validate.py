"""`amiforge validate`: exit codes, one stderr line per problem, JSON output, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from amiforge.cli.main import cli

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "recipes"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_examples_are_valid() -> None:
    result = invoke("validate", str(EXAMPLES))
    assert result.exit_code == 0, result.output
    assert "4 recipes valid" in result.stdout
    assert "windows-iis" in result.stdout
    assert result.stderr == ""


def test_json_output() -> None:
    result = invoke("--output", "json", "validate", str(EXAMPLES))
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["version"] == 1
    data = data["recipes"]
    assert [row["name"] for row in data] == ["ecs-host", "sabs-web", "web", "windows-iis"]
    web = data[2]
    assert set(web) == {"name", "base", "platform", "hash", "source"}
    assert web["platform"] == "linux"
    assert web["base"] == "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"
    assert len(web["hash"]) == 64
    assert web["source"] == str(EXAMPLES / "web.yaml")


def test_one_file(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("name: r\nbase: {ssm_parameter: /aws/service/p}\nbuild: {script: x}\n")
    result = invoke("--output", "json", "validate", str(tmp_path / "r.yaml"))
    assert result.exit_code == 0
    assert json.loads(result.stdout)["recipes"][0]["name"] == "r"


def test_every_problem_is_one_stderr_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "name: a\nbase: {filter: {name: 'al2023-*'}}\nbuild: {script: x, retries: 7}\n")
    (tmp_path / "b.yaml").write_text("name: [\n")
    result = invoke("validate", str(tmp_path))
    assert result.exit_code == 2
    assert result.stdout == ""
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    assert result.stderr.splitlines() == [
        f"amiforge: error: {a}: base.filter.owners: the name glob 'al2023-*' has no owners: a "
        "glob over everyone's public images is how people got crypto-miners baked into their "
        "images; add owners: [amazon] or the 12-digit account id that publishes the base",
        f"amiforge: error: {a}: build.retries: is 7; use a whole number from 0 to 5",
        f"amiforge: error: {b}: is not valid YAML: expected the node content, but found "
        "'<stream end>' at line 2, column 1",
    ]
    assert "Traceback" not in result.output


def test_missing_directory_exits_2(tmp_path: Path) -> None:
    result = invoke("validate", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert result.stderr == f"amiforge: error: {tmp_path / 'nope'}: no such file or directory\n"


def test_json_mode_errors_still_go_to_stderr(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("- not a mapping\n")
    result = invoke("--output", "json", "validate", str(tmp_path))
    assert result.exit_code == 2
    assert result.stdout == ""
    error = json.loads(result.stderr)  # one JSON object, the problems listed
    assert error["exit_code"] == 2
    assert error["problems"][0].startswith(f"{tmp_path / 'a.yaml'}: the top level")


def test_a_file_outside_the_recipe_directory_exits_2_naming_file_and_field(
        tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "name: r\nbase: {ssm_parameter: /aws/service/x}\n"
        "build: {user_data: ../../../../../../../../etc/passwd}\n")
    result = invoke("validate", str(tmp_path))
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"amiforge: error: {tmp_path / 'r.yaml'}: build.user_data: "
                           "../../../../../../../../etc/passwd resolves (after following "
                           "symlinks) outside the recipe directory")
    assert "root:" not in result.output and "Traceback" not in result.output


def test_a_base_parameter_outside_the_allowed_prefixes_exits_2(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "name: r\nbase: {ssm_parameter: /prod/db/password}\nbuild: {script: x}\n")
    result = invoke("validate", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"amiforge: error: {tmp_path / 'r.yaml'}: base.ssm_parameter: '/prod/db/password' is "
        "not under /aws/service/; to use your own, deploy with -p "
        "BaseParameterPrefixes=/your/prefix/ (and pass --base-parameter-prefixes to "
        "validate): amiforge reads a base parameter only there, so that a recipe cannot "
        "read other parameters (secrets) through the stack"]
    allowed = invoke("validate", "--base-parameter-prefixes", "/golden/,/prod/db/",
                     str(tmp_path))
    assert allowed.exit_code == 0, allowed.output
    other = invoke("validate", "--base-parameter-prefixes", "/golden/", str(tmp_path))
    assert other.exit_code == 2
    assert "is not under /aws/service/ or the stack's BaseParameterPrefixes (/golden/)" in (
        other.stderr)


def test_a_malformed_prefix_option_is_one_line_exit_2(tmp_path: Path) -> None:
    result = invoke("validate", "--base-parameter-prefixes", "golden", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == ("amiforge: error: --base-parameter-prefixes: 'golden' is not a "
                             "parameter path prefix: write it like /golden/amis/ (starting "
                             "and ending with /)\n")


def test_an_instance_profile_the_stack_does_not_allow_exits_2(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "name: r\nbase: {image_id: ami-0123456789abcdef0}\n"
        "build: {script: x, instance_profile: web-builder}\n")
    # Without the option validate cannot know the stack's list: the name's shape is checked.
    assert invoke("validate", str(tmp_path)).exit_code == 0
    allowed = invoke("validate", "--allowed-instance-profiles", "db,web-builder",
                     str(tmp_path))
    assert allowed.exit_code == 0, allowed.output
    refused = invoke("validate", "--allowed-instance-profiles", "", str(tmp_path))
    assert refused.exit_code == 2
    assert refused.stderr.splitlines() == [
        f"amiforge: error: {tmp_path / 'r.yaml'}: build.instance_profile: instance profile "
        "'web-builder' is not in the stack's AllowedInstanceProfiles: it allows none "
        "(AllowedInstanceProfiles is empty); redeploy with `amiforge deploy -p "
        "AllowedInstanceProfiles=...` naming it, or remove build.instance_profile"]
