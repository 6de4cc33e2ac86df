"""publish refuses before any AWS call: --prune with one file, a script that powers off."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from amiforge.aws.artifacts import tls_only_policy
from amiforge.cli.main import cli

BASE = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"


def recipe(tmp_path: Path, script: str = "echo ok\n") -> Path:
    (tmp_path / "s.sh").write_text("#!/bin/bash\n" + script)
    path = tmp_path / "web.yaml"
    path.write_text(f"name: web\nbase:\n  ssm_parameter: {BASE}\nbuild:\n  user_data: s.sh\n")
    return path


def test_prune_with_one_recipe_file_is_refused(tmp_path: Path) -> None:
    # conftest's dead endpoint: reaching AWS would be exit 1, not this exit 2.
    result = CliRunner().invoke(cli, ["publish", "--prune", str(recipe(tmp_path))])
    assert result.exit_code == 2
    assert "give the recipe directory, not one recipe file" in result.stderr


def test_a_script_that_powers_off_is_refused_by_publish_too(tmp_path: Path) -> None:
    recipe(tmp_path, "yum -y update\npoweroff\n")
    result = CliRunner().invoke(cli, ["publish", str(tmp_path)])
    assert result.exit_code == 2
    assert "powers off or restarts the machine" in result.stderr


def test_the_tls_only_policy_names_the_regions_partition() -> None:
    assert tls_only_policy("b")["Statement"][0]["Resource"] == [
        "arn:aws:s3:::b", "arn:aws:s3:::b/*"]
    for region, partition in (("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")):
        resources = tls_only_policy("b", region)["Statement"][0]["Resource"]
        assert resources[0] == f"arn:{partition}:s3:::b"
