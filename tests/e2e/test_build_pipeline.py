"""Issue 4 journeys: recipe -> AVAILABLE, tagged, catalogued image; failures leave nothing."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from amiforge.core.tags import BUILD_ID
from amiforge.deploy.bundle import build_bundle
from amiforge.localcloud.testing import images_of_build, snapshots_of_build
from amiforge.steps.latest import latest_image

pytestmark = pytest.mark.e2e
STACK = "amiforge-e2e"  # the stack the e2e conftest deploys


def as_json(result: Any) -> Any:
    return json.loads(result.stdout)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "recipes"


def builders(aws: Any, build_id: str) -> list[dict]:
    reservations = aws.client("ec2").describe_instances(
        Filters=[{"Name": f"tag:{BUILD_ID}", "Values": [build_id]}])["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def images_of(aws: Any, build_id: str) -> list[dict]:
    return images_of_build(aws.client("ec2"), build_id)


def snapshots_of(aws: Any, build_id: str) -> list[dict]:
    return snapshots_of_build(aws.client("ec2"), build_id)


def build_and_wait(amiforge: Any, *recipes: str) -> tuple[int, list[dict]]:
    result = amiforge("build", "--wait", *recipes, output="json")
    return result.exit_code, as_json(result)["builds"]


def test_example_linux_and_windows_recipes_reach_available(amiforge: Any, aws: Any,
                                                           local_cloud: Any) -> None:
    for seeded in ("Windows_Server-2022-English-Full-Base",):
        parameter = f"/aws/service/ami-windows-latest/{seeded}"
        local_cloud.release_base(name=seeded, owner="amazon", ssm_parameter=parameter,
                                 platform="windows")
    published = amiforge("publish", str(EXAMPLES), output="json")
    assert published.exit_code == 0, published.output
    code, builds = build_and_wait(amiforge, "web", "windows-iis")
    assert code == 0, builds
    for build in builds:
        assert build["status"] == "AVAILABLE"
        image = aws.client("ec2").describe_images(ImageIds=[build["image_id"]])["Images"][0]
        tags = {t["Key"]: t["Value"] for t in image["Tags"]}
        assert tags["amiforge:recipe"] == build["recipe"]
        assert tags["amiforge:build-id"] == build["build_id"]
        assert tags["amiforge:base-ami"] == build["base_ami"]
        assert len(tags["amiforge:recipe-hash"]) == 64
        assert "amiforge:git-commit" in tags
        # The builder: IMDSv2 required, encrypted EBS, stopped then terminated.
        (builder,) = builders(aws, build["build_id"])
        assert builder["MetadataOptions"]["HttpTokens"] == "required"
        assert builder["State"]["Name"] == "terminated"
        assert "KeyName" not in builder
        for snapshot in snapshots_of(aws, build["build_id"]):
            assert snapshot["Encrypted"] is True
        parameter = aws.client("ssm").get_parameter(Name=f"/amiforge/{build['recipe']}/latest")
        assert parameter["Parameter"]["Value"] == build["image_id"]


def test_failing_script_is_failed_with_console_tail_and_leaves_nothing(
        amiforge: Any, aws: Any, recipe_dir: Any) -> None:
    directory = recipe_dir("broken", "echo installing nginx\n# amiforge-sim: fail\nexit 1\n")
    assert amiforge("publish", str(directory)).exit_code == 0
    code, (build,) = build_and_wait(amiforge, "broken")
    assert code == 1
    assert build["status"] == "FAILED"
    assert "build script failed" in build["reason"]
    history = amiforge("history", "broken")
    assert "console tail" in history.stdout
    assert "AMIFORGE-RESULT: failure" in history.stdout
    assert all(i["State"]["Name"] == "terminated" for i in builders(aws, build["build_id"]))
    assert images_of(aws, build["build_id"]) == []
    assert snapshots_of(aws, build["build_id"]) == []


def test_hanging_builder_fails_by_timeout_and_leaves_nothing(amiforge: Any, aws: Any,
                                                             recipe_dir: Any) -> None:
    directory = recipe_dir("stuck", "# amiforge-sim: hang\nsleep infinity\n", timeout_minutes=5)
    assert amiforge("publish", str(directory)).exit_code == 0
    code, (build,) = build_and_wait(amiforge, "stuck")
    assert code == 1
    assert build["status"] == "FAILED"
    assert "timed out" in build["reason"]
    assert all(i["State"]["Name"] == "terminated" for i in builders(aws, build["build_id"]))
    assert images_of(aws, build["build_id"]) == []


def test_hanging_builder_with_one_retry_is_launched_twice_and_history_shows_both(
        amiforge: Any, aws: Any, recipe_dir: Any, stack: Any) -> None:
    directory = recipe_dir("stuck-twice", "# amiforge-sim: hang\nsleep infinity\n",
                           timeout_minutes=5, retries=1)
    assert amiforge("publish", str(directory)).exit_code == 0
    code, (build,) = build_and_wait(amiforge, "stuck-twice")
    assert code == 1
    assert build["status"] == "FAILED"
    assert "timed out" in build["reason"] and "attempt 2 of 2" in build["reason"]
    launched = builders(aws, build["build_id"])
    assert len(launched) == 2
    assert all(i["State"]["Name"] == "terminated" for i in launched)
    record = stack.catalog.get("stuck-twice", build["build_id"])
    assert record["launches"] == 2
    assert [(a["attempt"], a["outcome"]) for a in record["attempts"]] == [
        (1, "failed"), (2, "failed")]
    assert {a["instance_id"] for a in record["attempts"]} == {i["InstanceId"] for i in launched}
    assert all("timed out" in a["reason"] for a in record["attempts"])
    shown = amiforge("history", "stuck-twice")
    assert shown.exit_code == 0
    for a in record["attempts"]:
        assert f"attempt {a['attempt']} ({a['instance_id']}): failed: timed out" in shown.stdout
    assert as_json(amiforge("history", "stuck-twice", output="json"))["builds"][0]["attempts"] == \
        record["attempts"]


def test_a_builder_that_never_reaches_running_counts_against_retries(
        amiforge: Any, aws: Any, recipe_dir: Any, stack: Any, local_cloud: Any) -> None:
    directory = recipe_dir("crashes", "# amiforge-sim: crash\necho never runs\n", retries=1)
    assert amiforge("publish", str(directory)).exit_code == 0
    # The rule delivers `stopped` only: a builder that terminates without stopping is
    # found by AwaitStop's own look or by the stop check (rate(1 minute)), before the
    # attempt's 30 s timeout. The clock runs 60x so that check ticks every second.
    before, local_cloud.time_scale = local_cloud.time_scale, 60.0
    try:
        code, (build,) = build_and_wait(amiforge, "crashes")
    finally:
        local_cloud.time_scale = before
    assert code == 1
    assert build["status"] == "FAILED"
    assert "is terminated, not stopped" in build["reason"]
    assert "attempt 2 of 2" in build["reason"]
    assert len(builders(aws, build["build_id"])) == 2
    record = stack.catalog.get("crashes", build["build_id"])
    assert [(a["attempt"], a["outcome"]) for a in record["attempts"]] == [
        (1, "failed"), (2, "failed")]
    assert images_of(aws, build["build_id"]) == []


def test_flaky_build_with_one_retry_is_available_after_two_launches(
        amiforge: Any, aws: Any, recipe_dir: Any, stack: Any) -> None:
    directory = recipe_dir("flaky", "# amiforge-sim: flaky\necho ok\n", retries=1)
    assert amiforge("publish", str(directory)).exit_code == 0
    code, (build,) = build_and_wait(amiforge, "flaky")
    assert code == 0, build
    assert build["status"] == "AVAILABLE"
    launched = builders(aws, build["build_id"])
    assert len(launched) == 2
    assert all(i["State"]["Name"] == "terminated" for i in launched)
    record = stack.catalog.get("flaky", build["build_id"])
    assert record["launches"] == 2
    assert [(a["attempt"], a["outcome"]) for a in record["attempts"]] == [
        (1, "failed"), (2, "succeeded")]
    assert record["attempts"][0]["reason"] == "build script failed (exit 1)"
    assert "AMIFORGE-RESULT: failure" in record["attempts"][0]["console_tail"]


def test_latest_is_one_get_and_one_query(amiforge: Any, recipe_dir: Any, stack: Any) -> None:
    """The published version (GetItem of the recipe store) and the AVAILABLE builds (one
    Query of the sparse index): bounded by retention, never a Scan of the history."""
    directory = recipe_dir("lookup")
    assert amiforge("publish", str(directory)).exit_code == 0
    code, (build,) = build_and_wait(amiforge, "lookup")
    assert code == 0
    calls: list[str] = []
    dynamodb = stack.client("dynamodb")
    dynamodb.meta.events.register("before-call.dynamodb.*",
                                  lambda model, **_: calls.append(model.name))
    try:
        image = latest_image(stack, "lookup")
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.*")
    assert calls == ["GetItem", "Query"]
    assert image["ImageId"] == build["image_id"]
    shown = amiforge("latest", "lookup")
    assert shown.stdout.strip() == build["image_id"]


def test_every_function_runs_the_deployed_bundle(aws: Any, stack: Any) -> None:
    expected = base64.b64encode(hashlib.sha256(build_bundle().data).digest()).decode()
    functions = [f for page in aws.client("lambda").get_paginator("list_functions").paginate()
                 for f in page["Functions"] if f["FunctionName"].startswith(f"{STACK}-")]
    assert len(functions) >= 12
    assert {f["CodeSha256"] for f in functions} == {expected}


def test_latest_of_an_unknown_recipe_is_one_line_exit_2(amiforge: Any) -> None:
    result = amiforge("latest", "no-such-recipe")
    assert result.exit_code == 2
    assert "no-such-recipe" in result.stderr
    assert "Traceback" not in result.output
