"""`amiforge validate` lints scripts: bash -n and power-off are errors (exit 2, file and
field named), IMDSv1 a warning (exit 0) unless --strict."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from amiforge.cli.main import cli

BASE = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"


def recipe(tmp_path: Path, script: str) -> Path:
    (tmp_path / "s.sh").write_text(script)
    (tmp_path / "r.yaml").write_text(
        f"name: r\nbase:\n  ssm_parameter: {BASE}\nbuild:\n  user_data: s.sh\n")
    return tmp_path


def validate(*args: str) -> Result:
    return CliRunner().invoke(cli, ["validate", *args])


def test_a_bash_syntax_error_is_refused(tmp_path: Path) -> None:
    result = validate(str(recipe(tmp_path, "#!/bin/bash\nif true; then\necho x\n")))
    assert result.exit_code == 2
    assert "r.yaml: build.user_data (s.sh): bash syntax error" in result.stderr
    assert "Traceback" not in result.output


def test_a_script_that_powers_off_is_refused(tmp_path: Path) -> None:
    result = validate(str(recipe(tmp_path, "#!/bin/bash\nyum -y update\nshutdown -h now\n")))
    assert result.exit_code == 2
    assert "line 3 powers off or restarts the machine" in result.stderr


def test_imdsv1_warns_and_strict_refuses(tmp_path: Path) -> None:
    directory = recipe(tmp_path, "#!/bin/bash\ncurl http://169.254.169.254/latest/meta-data/\n")
    warned = validate(str(directory))
    assert warned.exit_code == 0
    assert warned.stderr.startswith("amiforge: warning: ")
    assert "line 2 reads instance metadata without a session token" in warned.stderr
    strict = validate(str(directory), "--strict")
    assert strict.exit_code == 2
    assert "amiforge: error: " in strict.stderr
