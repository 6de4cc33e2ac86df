"""The CI examples in examples/ci, run as their CI would run them: every `amiforge`
command of the GitHub Actions workflow and the CodeBuild buildspec through the installed
console script against the local cloud, and the git hook on a real commit."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "examples" / "ci"
STACK = "amiforge-e2e"  # tests/e2e/conftest.py's stack
AMIFORGE_BIN = Path(sys.executable).parent


def workflow_commands() -> list[str]:
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    steps = workflow["jobs"]["recipes"]["steps"]
    return [step["run"] for step in steps if "run" in step]


def buildspec_commands() -> list[str]:
    spec = yaml.safe_load((CI / "buildspec.yml").read_text())
    return [c for phase in spec["phases"].values() for c in phase["commands"]]


def wheel_name() -> str:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return f"amiforge-{version}-py3-none-any.whl"


@pytest.mark.parametrize("commands", [workflow_commands(), buildspec_commands()],
                         ids=["github-actions", "codebuild"])
def test_the_install_line_names_the_wheel_make_dist_builds(commands: list[str]) -> None:
    installs = [c for c in commands if c.startswith("pip install")]
    assert installs == [f"pip install ./tools/{wheel_name()}"]
    makefile = (ROOT / "Makefile").read_text()
    assert "\ndist:" in makefile and "-m build --outdir dist" in makefile


def ci_env(local_cloud: Any) -> dict[str, str]:
    return {**os.environ, "AWS_ENDPOINT_URL": local_cloud.endpoint,
            "AWS_REGION": local_cloud.region, "AMIFORGE_STACK": STACK,
            "PATH": f"{AMIFORGE_BIN}{os.pathsep}{os.environ['PATH']}"}


def recipes_repo(tmp_path: Path, name: str) -> Path:
    """A recipes repository with one recipe, as the examples expect (recipes/)."""
    repo = tmp_path / "repo"
    (repo / "recipes" / "scripts").mkdir(parents=True)
    (repo / "recipes" / "scripts" / f"{name}.sh").write_text("#!/bin/bash\necho ci\n")
    (repo / "recipes" / f"{name}.yaml").write_text(
        f"name: {name}\nbase:\n  ssm_parameter: /aws/service/ami-amazon-linux-latest/"
        f"al2023-ami-kernel-6.1-x86_64\nbuild:\n  user_data: scripts/{name}.sh\n")
    return repo


@pytest.mark.parametrize("example", ["github-actions", "codebuild"])
def test_each_examples_amiforge_commands_run_against_the_stack(
        example: str, tmp_path: Path, local_cloud: Any, stack: Any) -> None:
    name = f"ci-{example[:6]}"
    repo = recipes_repo(tmp_path, name)
    commands = workflow_commands() if example == "github-actions" else buildspec_commands()
    ran = []
    for command in commands:
        if not command.startswith("amiforge"):
            continue  # pip install: checked above
        proc = subprocess.run(command, shell=True, cwd=repo, env=ci_env(local_cloud),
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, (command, proc.stderr)
        assert "Traceback" not in proc.stderr
        ran.append(command)
    assert any(" publish " in c for c in ran) and any("validate" in c for c in ran)
    assert stack.store.current(name)["hash"]  # published
    if example == "codebuild":  # its artifact is the publish result
        published = json.loads((repo / "publish.json").read_text())
        assert [p["recipe"] for p in published["recipes"]] == [name]


def test_the_git_hook_publishes_a_commit_on_main(tmp_path: Path, local_cloud: Any,
                                                 stack: Any) -> None:
    name = "ci-hook"
    repo = recipes_repo(tmp_path, name)
    env = ci_env(local_cloud)

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True,
                       timeout=120)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "ci@example.com")
    git("config", "user.name", "ci")
    hook = repo / ".git" / "hooks" / "post-commit"
    shutil.copy(CI / "git-hooks" / "post-commit", hook)
    hook.chmod(0o755)
    git("add", "-A")
    git("commit", "-qm", "a recipe")
    record = stack.store.current(name)
    assert record is not None and record["hash"]
    assert record["git_commit"].startswith(subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
        check=True).stdout.strip())
