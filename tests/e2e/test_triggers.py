"""Issue 5 journeys: new base images and git commits trigger builds, exactly once."""

from __future__ import annotations

import json
import subprocess
import textwrap
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from amiforge.ops.builds import wait_for_builds
from amiforge.steps.detect import detect

pytestmark = pytest.mark.e2e


def family() -> str:
    """A vendor image family of this test's own, so tests on one cloud never interfere."""
    return f"vendor-{uuid.uuid4().hex[:8]}"


def write_recipe(directory: Path, name: str, base_family: str, script: str = "echo hi\n") -> None:
    (directory / "scripts").mkdir(parents=True, exist_ok=True)
    (directory / "scripts" / f"{name}.sh").write_text("#!/bin/bash\n" + script)
    (directory / f"{name}.yaml").write_text(textwrap.dedent(f"""\
        name: {name}
        base:
          filter: {{owners: [amazon], name: "{base_family}-*", architecture: x86_64}}
        build:
          platform: linux
          user_data: scripts/{name}.sh
          timeout_minutes: 30
        """))


def git(directory: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=directory, check=True, capture_output=True,
                          text=True).stdout.strip()


def started(report: dict, names: set[str]) -> dict[str, str]:
    return {d["recipe"]: d["reason"] for d in report["decisions"]
            if d["recipe"] in names and d.get("outcome") == "started"}


def settle(stack: Any, report: dict) -> None:
    """Wait for the builds a detection started."""
    builds = [{"recipe": d["recipe"], "build_id": d["build_id"]}
              for d in report["decisions"] if d.get("outcome") == "started"]
    results = wait_for_builds(stack, builds, timeout=300)
    assert all(r["status"] == "AVAILABLE" for r in results), results


def test_new_base_rebuilds_exactly_the_recipes_on_it(amiforge: Any, local_cloud: Any,
                                                     stack: Any, tmp_path: Path) -> None:
    a, b = family(), family()
    local_cloud.release_base(name=f"{a}-2026.1", owner="amazon")
    local_cloud.release_base(name=f"{b}-2026.1", owner="amazon")
    write_recipe(tmp_path, "on-a-one", a)
    write_recipe(tmp_path, "on-a-two", a)
    write_recipe(tmp_path, "on-b", b)
    names = {"on-a-one", "on-a-two", "on-b"}
    published = json.loads(amiforge("publish", str(tmp_path), output="json").stdout)["recipes"]
    assert {p["recipe"] for p in published if p["build_started"]} == names
    settle(stack, {"decisions": [{"recipe": p["recipe"], "build_id": p["build_started"],
                                  "outcome": "started"} for p in published]})
    new_image = local_cloud.release_base(name=f"{a}-2026.2", owner="amazon")
    result = amiforge("detect", output="json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert started(report, names) == {"on-a-one": "base changed", "on-a-two": "base changed"}
    mine = {d["recipe"]: d for d in report["decisions"] if d["recipe"] in names}
    assert mine["on-b"]["reason"] == "up to date"
    assert mine["on-a-one"]["base_ami"] == new_image
    settle(stack, report)
    # Detecting again finds nothing to do.
    assert started(detect({}, stack), names) == {}


def test_base_released_with_an_earlier_date_is_still_caught(local_cloud: Any, stack: Any,
                                                            amiforge: Any,
                                                            tmp_path: Path) -> None:
    fam = family()
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    local_cloud.release_base(name=f"{fam}-1", owner="amazon",
                             creation_date=two_days_ago - timedelta(days=30))
    write_recipe(tmp_path, "late-release", fam)
    published = json.loads(amiforge("publish", str(tmp_path), output="json").stdout)["recipes"]
    settle(stack, {"decisions": [{"recipe": "late-release", "outcome": "started",
                                  "build_id": published[0]["build_started"]}]})
    # The vendor's release is dated two days ago: a "released today?" check would miss it.
    released = local_cloud.release_base(name=f"{fam}-2", owner="amazon",
                                        creation_date=two_days_ago)
    report = detect({"trigger": "test"}, stack)
    assert started(report, {"late-release"}) == {"late-release": "base changed"}
    settle(stack, report)
    assert stack.catalog.latest("late-release")["base_ami"] == released


def test_a_commit_that_edits_one_script_rebuilds_only_that_recipe(amiforge: Any,
                                                                  local_cloud: Any, stack: Any,
                                                                  tmp_path: Path) -> None:
    fam = family()
    local_cloud.release_base(name=f"{fam}-1", owner="amazon")
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "ci@example.com")
    git(repo, "config", "user.name", "ci")
    write_recipe(repo, "git-one", fam)
    write_recipe(repo, "git-two", fam)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two recipes")
    first = json.loads(amiforge("publish", str(repo), output="json").stdout)["recipes"]
    assert all(p["build_started"] for p in first)
    assert {p["git_commit"] for p in first} == {git(repo, "rev-parse", "HEAD")}
    settle(stack, {"decisions": [{"recipe": p["recipe"], "build_id": p["build_started"],
                                  "outcome": "started"} for p in first]})
    (repo / "scripts" / "git-two.sh").write_text("#!/bin/bash\necho changed\n")
    git(repo, "commit", "-qam", "change git-two")
    second = {p["recipe"]: p for p in
              json.loads(amiforge("publish", str(repo), output="json").stdout)["recipes"]}
    assert second["git-one"]["build_started"] is None
    assert second["git-two"]["build_started"]
    assert second["git-two"]["git_commit"] == git(repo, "rev-parse", "HEAD")
    settle(stack, {"decisions": [{"recipe": "git-two", "outcome": "started",
                                  "build_id": second["git-two"]["build_started"]}]})
    again = json.loads(amiforge("publish", str(repo), output="json").stdout)["recipes"]
    assert [p["build_started"] for p in again] == [None, None]
    assert [p["changed"] for p in again] == [False, False]


def test_five_concurrent_detections_start_one_build_per_stale_recipe(
        amiforge: Any, local_cloud: Any, stack: Any, tmp_path: Path) -> None:
    fam = family()
    local_cloud.release_base(name=f"{fam}-1", owner="amazon")
    names = {f"race-{i}" for i in range(3)}
    for name in names:
        write_recipe(tmp_path, name, fam)
    assert amiforge("publish", "--no-detect", str(tmp_path)).exit_code == 0
    reports: list[dict] = []
    barrier = threading.Barrier(5)

    def run() -> None:
        barrier.wait()
        reports.append(detect({"recipes": sorted(names), "trigger": "race"}, stack))

    threads = [threading.Thread(target=run) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    starts = [d["recipe"] for r in reports for d in r["decisions"] if d.get("outcome") == "started"]
    assert sorted(starts) == sorted(names)
    executions = stack.client("stepfunctions").list_executions(
        stateMachineArn=stack.state_machine_arn)["executions"]
    for name in names:
        assert len([e for e in executions if e["name"].startswith(f"{name}-")]) == 1


def test_plan_shows_each_reason_and_changes_nothing(amiforge: Any, local_cloud: Any,
                                                   stack: Any, tmp_path: Path) -> None:
    fam = family()
    local_cloud.release_base(name=f"{fam}-1", owner="amazon")
    for name in ("plan-same", "plan-script", "plan-new"):
        write_recipe(tmp_path, name, fam)
    (tmp_path / "plan-new.yaml").rename(tmp_path / "plan-new.later")
    published = json.loads(amiforge("publish", str(tmp_path), output="json").stdout)["recipes"]
    settle(stack, {"decisions": [{"recipe": p["recipe"], "build_id": p["build_started"],
                                  "outcome": "started"} for p in published]})
    (tmp_path / "plan-new.later").rename(tmp_path / "plan-new.yaml")
    (tmp_path / "scripts" / "plan-script.sh").write_text("#!/bin/bash\necho v2\n")
    before = stack.client("stepfunctions").list_executions(
        stateMachineArn=stack.state_machine_arn)["executions"]
    plan = {d["recipe"]: d for d in
            json.loads(amiforge("plan", str(tmp_path), output="json").stdout)["decisions"]}
    assert plan["plan-same"]["reason"] == "up to date"
    assert plan["plan-new"]["reason"] == "never built"
    assert plan["plan-script"]["reason"] == "recipe changed"
    assert plan["plan-script"]["changes"] == ["scripts/plan-script.sh"]
    # Now only the base moves: plan-same says from which AMI to which.
    new_base = local_cloud.release_base(name=f"{fam}-2", owner="amazon")
    plan = {d["recipe"]: d for d in
            json.loads(amiforge("plan", str(tmp_path), output="json").stdout)["decisions"]}
    assert plan["plan-same"]["reason"] == "base changed"
    assert plan["plan-same"]["detail"].endswith(f"to {new_base}")
    text = amiforge("plan", str(tmp_path)).stdout
    assert "base changed" in text and "never built" in text
    after = stack.client("stepfunctions").list_executions(
        stateMachineArn=stack.state_machine_arn)["executions"]
    assert len(after) == len(before)
