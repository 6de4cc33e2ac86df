"""The test phase (issue 20): a tester launched from the new image runs the recipe's test.

Through the real CLI and the deployed stack: a failing test fails the build and leaves
nothing (no tester, image or snapshot; ``latest`` where it was); a passing one makes the
image AVAILABLE after exactly one tester, launched like a builder and terminated; a test
that hangs fails by the test's own timeout. Testers are swept and cancelled like builders.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from amiforge.core.tags import BUILD_ID, RECIPE, ROLE, STACK
from amiforge.localcloud.testing import images_of_build, snapshots_of_build, wait_for
from amiforge.ops.builds import current_state

pytestmark = pytest.mark.e2e


def instances(aws: Any, build_id: str, role: str) -> list[dict[str, Any]]:
    reservations = aws.client("ec2").describe_instances(Filters=[
        {"Name": f"tag:{BUILD_ID}", "Values": [build_id]},
        {"Name": f"tag:{ROLE}", "Values": [role]}])["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def with_test(directory: Path, name: str, test_script: str, *,
              timeout_minutes: int | None = None) -> Path:
    """Give recipe NAME (written by recipe_dir) a test: section with a test file."""
    (directory / "scripts" / f"{name}-test.sh").write_text("#!/bin/bash\n" + test_script)
    recipe = directory / f"{name}.yaml"
    section = f"test:\n  user_data: scripts/{name}-test.sh\n"
    if timeout_minutes is not None:
        section += f"  timeout_minutes: {timeout_minutes}\n"
    recipe.write_text(recipe.read_text() + section)
    return directory


def build(amiforge: Any, recipe: str) -> tuple[int, dict[str, Any]]:
    result = amiforge("build", "--wait", recipe, output="json")
    (only,) = json.loads(result.stdout)["builds"]
    return result.exit_code, only


def latest_parameter(aws: Any, recipe: str) -> str:
    value: str = aws.client("ssm").get_parameter(
        Name=f"/amiforge/{recipe}/latest")["Parameter"]["Value"]
    return value


def test_failing_test_fails_the_build_removes_the_image_and_keeps_latest(
        amiforge: Any, aws: Any, recipe_dir: Any, stack: Any) -> None:
    # A first version without a test becomes latest.
    directory = recipe_dir("tested-bad", "echo first version\n")
    assert amiforge("publish", str(directory)).exit_code == 0
    code, first = build(amiforge, "tested-bad")
    assert code == 0 and first["status"] == "AVAILABLE", first
    assert latest_parameter(aws, "tested-bad") == first["image_id"]
    # The next version's test fails.
    with_test(directory, "tested-bad",
              "echo checking nginx answers\ncurl -fsS localhost || echo 'connection refused'\n"
              "# amiforge-sim: fail\nexit 1\n")
    assert amiforge("publish", str(directory)).exit_code == 0
    code, failed = build(amiforge, "tested-bad")
    assert code == 1
    assert failed["status"] == "FAILED"
    assert "test failed" in failed["reason"]
    assert "test script failed (exit 1)" in failed["reason"]
    history = amiforge("history", "tested-bad")
    assert "test failed" in history.stdout
    assert "console tail" in history.stdout
    assert "AMIFORGE-RESULT: failure exit=1" in history.stdout
    # No tester, image or snapshot left; latest did not move.
    (tester,) = instances(aws, failed["build_id"], "tester")
    assert tester["State"]["Name"] == "terminated"
    assert all(i["State"]["Name"] == "terminated"
               for i in instances(aws, failed["build_id"], "builder"))
    assert images_of_build(aws.client("ec2"), failed["build_id"]) == []
    assert snapshots_of_build(aws.client("ec2"), failed["build_id"]) == []
    assert latest_parameter(aws, "tested-bad") == first["image_id"]
    assert json.loads(amiforge("latest", "tested-bad", output="json").stdout)[
        "image_id"] == first["image_id"]
    record = stack.catalog.get("tested-bad", failed["build_id"])
    assert record["test"]["outcome"] == "failed"
    assert record["test"]["instance_id"] == tester["InstanceId"]
    shown = json.loads(amiforge("history", "tested-bad", output="json").stdout)["builds"][0]
    assert shown["test"]["outcome"] == "failed"
    assert shown["test"]["reason"].startswith("test script failed (exit 1)")


def test_passing_test_makes_the_image_available_after_one_tester(
        amiforge: Any, aws: Any, recipe_dir: Any, stack: Any) -> None:
    directory = with_test(recipe_dir("tested-good", "echo installing\n"), "tested-good",
                          "echo checking the image\ntest -d /etc\n# amiforge-sim: slow 3\n")
    assert amiforge("publish", str(directory)).exit_code == 0
    started = amiforge("build", "tested-good", output="json")
    assert started.exit_code == 0, started.output
    build_id = json.loads(started.stdout)["builds"][0]["build_id"]
    ec2 = aws.client("ec2")

    def tester_volumes() -> list[dict[str, Any]] | None:
        # Read while the tester lives: its volumes go with it (DeleteOnTermination).
        for tester in instances(aws, build_id, "tester"):
            volumes: list[dict[str, Any]] = ec2.describe_volumes(Filters=[
                {"Name": "attachment.instance-id", "Values": [tester["InstanceId"]]}])["Volumes"]
            return volumes or None
        return None

    volumes = wait_for(tester_volumes, timeout=120)
    assert volumes and all(v["Encrypted"] for v in volumes)
    execution = json.loads(started.stdout)["builds"][0]["execution_arn"]
    sfn = aws.client("stepfunctions")
    # The execution's end, not the record's status: Register marks the record AVAILABLE
    # before it moves the SSM parameter (the catalog first, latest last).
    ended = wait_for(lambda: (s := sfn.describe_execution(executionArn=execution)["status"])
                     != "RUNNING" and s or None, timeout=180)
    assert ended == "SUCCEEDED"
    record = stack.catalog.get("tested-good", build_id)
    assert record["status"] == "AVAILABLE", record
    (tester,) = instances(aws, build_id, "tester")
    assert tester["ImageId"] == record["image_id"]       # launched from the new image
    assert tester["State"]["Name"] == "terminated"
    assert tester["MetadataOptions"]["HttpTokens"] == "required"
    assert "KeyName" not in tester
    tags = {t["Key"]: t["Value"] for t in tester["Tags"]}
    assert tags["amiforge:role"] == "tester"
    assert tags["amiforge:build-id"] == build_id
    assert tags["amiforge:recipe-hash"] == record["recipe_hash"]
    assert tags["amiforge:stack"] == "amiforge-e2e"
    assert record["test"]["outcome"] == "passed"
    assert record["test"]["instance_id"] == tester["InstanceId"]
    assert record["test"]["duration_seconds"] is not None
    # The record's instance id still names the builder.
    (builder,) = instances(aws, build_id, "builder")
    assert record["instance_id"] == builder["InstanceId"]
    # No inbound: the tester sits in the builder's group (the stack's no-inbound group).
    assert tester["SecurityGroups"] == builder["SecurityGroups"] != []
    assert latest_parameter(aws, "tested-good") == record["image_id"]
    shown = json.loads(amiforge("history", "tested-good", output="json").stdout)
    assert shown["builds"][0]["status"] == "AVAILABLE"
    assert shown["builds"][0]["test"] == {
        "instance_id": tester["InstanceId"], "outcome": "passed",
        "duration_seconds": record["test"]["duration_seconds"],
        "reason": "AMIFORGE-RESULT: success"}
    text = amiforge("history", "tested-good").stdout
    assert f"test of {build_id} ({tester['InstanceId']}): passed" in text


def test_hanging_test_fails_by_its_timeout_and_leaves_nothing(
        amiforge: Any, aws: Any, recipe_dir: Any) -> None:
    directory = with_test(recipe_dir("tested-hang", "echo installing\n"), "tested-hang",
                          "# amiforge-sim: hang\nsleep infinity\n", timeout_minutes=5)
    assert amiforge("publish", str(directory)).exit_code == 0
    code, failed = build(amiforge, "tested-hang")
    assert code == 1
    assert failed["status"] == "FAILED"
    assert "test failed" in failed["reason"] and "timed out" in failed["reason"]
    (tester,) = instances(aws, failed["build_id"], "tester")
    assert tester["State"]["Name"] == "terminated"
    assert images_of_build(aws.client("ec2"), failed["build_id"]) == []
    assert snapshots_of_build(aws.client("ec2"), failed["build_id"]) == []


def test_testers_are_swept_and_cancelled_like_builders(
        amiforge: Any, aws: Any, recipe_dir: Any, stack: Any) -> None:
    # A live build in its test phase: the sweeper leaves its tester alone...
    directory = with_test(recipe_dir("tested-live", "echo installing\n"), "tested-live",
                          "# amiforge-sim: hang\nsleep infinity\n", timeout_minutes=180)
    assert amiforge("publish", "--no-detect", str(directory)).exit_code == 0
    (running,) = json.loads(amiforge("build", "tested-live", output="json").stdout)["builds"]
    wait_for(lambda: current_state(stack, running["execution_arn"]) == ("RUNNING", "AwaitTest")
             or None, timeout=120, interval=0.3, what="tested-live waiting in AwaitTest")
    (tester,) = instances(aws, running["build_id"], "tester")
    report = json.loads(amiforge("sweep", output="json").stdout)
    assert {a["action"] for a in report["actions"]
            if a["build_id"] == running["build_id"]} == {"leave"}
    # ... and cancelling the build terminates it, as it terminates builders.
    cancelled = amiforge("cancel", running["build_id"])
    assert cancelled.exit_code == 0, cancelled.output
    (tester,) = instances(aws, running["build_id"], "tester")
    assert tester["State"]["Name"] == "terminated"
    assert images_of_build(aws.client("ec2"), running["build_id"]) == []

    # A tester a finished build left behind (its cleanup never ran) is swept.
    build_id = f"tested-left-{uuid.uuid4().hex[:20]}"
    stack.catalog.put_many([{"recipe": "tested-left", "build_id": build_id,
                             "status": "FAILED", "reason": "e2e",
                             "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}])
    base = aws.client("ssm").get_parameter(
        Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64")
    tags = [{"Key": ROLE, "Value": "tester"}, {"Key": RECIPE, "Value": "tested-left"},
            {"Key": BUILD_ID, "Value": build_id}, {"Key": STACK, "Value": "amiforge-e2e"}]
    leftover = aws.client("ec2").run_instances(
        ImageId=base["Parameter"]["Value"], MinCount=1, MaxCount=1, InstanceType="t3.small",
        UserData="#!/bin/bash\n# amiforge-sim: hang\nsleep infinity\n",
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]["InstanceId"]
    planned = json.loads(amiforge("sweep", "--dry-run", output="json").stdout)
    swept = json.loads(amiforge("sweep", output="json").stdout)
    for report in (planned, swept):
        rows = [(a["kind"], a["resource"], a["action"]) for a in report["actions"]
                if a["build_id"] == build_id]
        assert rows == [("instance", leftover, "terminate")]
    state = aws.client("ec2").describe_instances(InstanceIds=[leftover])[
        "Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "terminated"


def test_a_windows_test_runs_in_the_windows_wrapper_and_can_fail(
        amiforge: Any, aws: Any, local_cloud: Any, tmp_path: Path) -> None:
    seeded = "Windows_Server-2022-English-Full-Base"
    parameter = f"/aws/service/ami-windows-latest/{seeded}"
    local_cloud.release_base(name=seeded, owner="amazon", ssm_parameter=parameter,
                             platform="windows")
    directory = tmp_path / "windows"
    directory.mkdir()
    (directory / "tested-win.yaml").write_text(
        "name: tested-win\n"
        f"base: {{ssm_parameter: {parameter}}}\n"
        "build:\n  platform: windows\n  script: Install-WindowsFeature Web-Server\n"
        "test:\n  script: |\n    Invoke-WebRequest http://localhost -UseBasicParsing\n"
        "    # amiforge-sim: fail\n")
    assert amiforge("publish", str(directory)).exit_code == 0
    code, failed = build(amiforge, "tested-win")
    assert code == 1
    assert failed["status"] == "FAILED" and "test failed" in failed["reason"]
    (tester,) = instances(aws, failed["build_id"], "tester")
    user_data = aws.client("ec2").describe_instance_attribute(
        InstanceId=tester["InstanceId"], Attribute="userData")["UserData"]["Value"]
    script = base64.b64decode(user_data).decode()
    assert script.lstrip().lower().startswith("<powershell>")
    assert "Invoke-WebRequest http://localhost" in script
    assert tester["State"]["Name"] == "terminated"
    assert images_of_build(aws.client("ec2"), failed["build_id"]) == []


def test_a_tester_that_never_runs_fails_the_test(amiforge: Any, aws: Any, recipe_dir: Any,
                                                 local_cloud: Any) -> None:
    directory = with_test(recipe_dir("tested-crash", "echo installing\n"), "tested-crash",
                          "# amiforge-sim: crash\ncurl -fsS localhost\n")
    assert amiforge("publish", str(directory)).exit_code == 0
    # The rule delivers `stopped` only: a tester that terminates without stopping is found
    # by AwaitTest's own look or by the stop check (rate(1 minute)), before the test's
    # 15 s timeout. The clock runs 60x so that check ticks every second.
    before, local_cloud.time_scale = local_cloud.time_scale, 60.0
    try:
        code, failed = build(amiforge, "tested-crash")
    finally:
        local_cloud.time_scale = before
    assert code == 1
    assert failed["status"] == "FAILED"
    assert "test failed: tester" in failed["reason"]
    assert "is terminated, not stopped" in failed["reason"]
    assert images_of_build(aws.client("ec2"), failed["build_id"]) == []
    assert snapshots_of_build(aws.client("ec2"), failed["build_id"]) == []
