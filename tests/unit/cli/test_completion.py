"""Shell completion: commands, options, and recipe names from a recipe directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from amiforge.cli.main import cli


def complete(words: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What bash would be offered for the last word of ``amiforge WORDS``."""
    parts = ["amiforge", *words.split(" ")]
    monkeypatch.setenv("COMP_WORDS", " ".join(parts))
    monkeypatch.setenv("COMP_CWORD", str(len(parts) - 1))
    result = CliRunner().invoke(cli, [], prog_name="amiforge",
                                env={"_AMIFORGE_COMPLETE": "bash_complete"})
    return [line.split(",", 1)[1] for line in result.output.splitlines() if "," in line]


@pytest.fixture
def recipes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "recipes"
    directory.mkdir()
    for name in ("web", "worker", "ecs-host"):
        (directory / f"{name}.yaml").write_text(f"name: {name}\n")
    (directory / "broken.yaml").write_text("name: [unclosed\n")
    monkeypatch.chdir(tmp_path)
    return directory


def test_commands_and_options_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    assert {"history", "status"} <= set(complete("h", monkeypatch) + complete("s", monkeypatch))
    assert "--output" in complete("--ou", monkeypatch)
    assert complete("history web --lim", monkeypatch) == ["--limit"]


def test_recipe_names_come_from_the_recipe_directory(recipes: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert complete("history w", monkeypatch) == ["web", "worker"]
    assert complete("latest e", monkeypatch) == ["ecs-host"]
    # Names already given are not offered again.
    assert complete("build web w", monkeypatch) == ["worker"]


def test_amiforge_recipes_names_another_directory(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "db.yaml").write_text("name: db\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AMIFORGE_RECIPES", str(other))
    assert complete("history ", monkeypatch) == ["db"]


def test_no_recipes_and_no_stack_completes_nothing_without_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # conftest points AWS_ENDPOINT_URL at a dead port: the stack lookup fails fast.
    assert complete("history ", monkeypatch) == []


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_documented_shell_gets_its_script(shell: str) -> None:
    result = CliRunner().invoke(cli, [], prog_name="amiforge",
                                env={"_AMIFORGE_COMPLETE": f"{shell}_source"})
    assert result.exit_code == 0
    assert "_AMIFORGE_COMPLETE" in result.output  # the script calls amiforge back
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    assert f"_AMIFORGE_COMPLETE={shell}_source amiforge" in readme
