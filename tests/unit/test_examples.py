"""The example recipes in examples/recipes are valid and their scripts are sound."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from amiforge.core.recipes import load_recipes
from amiforge.core.userdata import USER_DATA_LIMIT, user_data_size

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "recipes"


def test_examples_validate() -> None:
    recipes = {r.name: r for r in load_recipes(EXAMPLES)}
    assert set(recipes) == {"web", "ecs-host", "windows-iis", "sabs-web"}
    assert recipes["web"].base.ssm_parameter == (
        "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64")
    ecs = recipes["ecs-host"].base
    assert (ecs.owners, ecs.name, ecs.architecture) == (
        ("amazon",), "*amazon-ecs-optimized", "x86_64")
    assert recipes["windows-iis"].build.platform == "windows"
    assert recipes["windows-iis"].base.ssm_parameter == (
        "/aws/service/ami-windows-latest/Windows_Server-2022-English-Full-Base")
    sabs = recipes["sabs-web"]
    assert sabs.build.cloudformation is not None
    assert "\n  InstanceId:" in sabs.cloudformation_template()


def test_examples_stay_in_one_region_and_unshared() -> None:
    # The local demo runs in one region with no other accounts.
    for recipe in load_recipes(EXAMPLES):
        assert recipe.image.regions == () and recipe.image.share_with == (), recipe.name


def test_examples_fit_in_user_data() -> None:
    for recipe in load_recipes(EXAMPLES):
        if recipe.build.cloudformation is not None:
            continue  # its template configures the instance; amiforge wraps no user data
        assert user_data_size(recipe.user_data()) < USER_DATA_LIMIT


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("script", sorted((EXAMPLES / "scripts").glob("*.sh")),
                         ids=lambda p: p.name)
def test_example_shell_scripts_pass_bash_n(script: Path) -> None:
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_wrapped_example_user_data_passes_bash_n() -> None:
    for recipe in load_recipes(EXAMPLES):
        if recipe.build.platform == "linux" and recipe.build.cloudformation is None:
            proc = subprocess.run(["bash", "-n"], input=recipe.user_data(), text=True,
                                  capture_output=True)
            assert proc.returncode == 0, (recipe.name, proc.stderr)
