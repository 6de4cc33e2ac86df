"""Issue 17 and 15 journeys: builds visible from their start, failures visible and retried
on the recipe's policy, several names checked before anything starts, `publish --wait`,
and at most one build per (recipe content, base) however many `amiforge build` race."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from amiforge.core.hashing import build_key
from amiforge.core.parse import recipe_from_document
from amiforge.localcloud.testing import receive_all
from amiforge.ops.builds import wait_for_builds
from amiforge.steps.detect import detect, start_and_claim

pytestmark = pytest.mark.e2e

AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"
FAIL = "# amiforge-sim: fail\nexit 3\n"
STACK = "amiforge-e2e"  # the stack tests/e2e/conftest.py deploys


def write(directory: Path, name: str, script: str = "echo ok\n", *,
          retry_failed: int | None = None, family: str | None = None) -> Path:
    (directory / "scripts").mkdir(parents=True, exist_ok=True)
    (directory / "scripts" / f"{name}.sh").write_text("#!/bin/bash\n" + script)
    policy = f"  retry_failed: {retry_failed}\n" if retry_failed is not None else ""
    base = (f'filter: {{owners: [amazon], name: "{family}-*", architecture: x86_64}}'
            if family else f"ssm_parameter: {AL2023}")
    (directory / f"{name}.yaml").write_text(textwrap.dedent(f"""\
        name: {name}
        base:
          {base}
        build:
          platform: linux
          user_data: scripts/{name}.sh
          timeout_minutes: 30
          retries: 0
        """) + policy)
    return directory


def executions_of(stack: Any, name: str) -> list[dict]:
    pages = stack.client("stepfunctions").get_paginator("list_executions").paginate(
        stateMachineArn=stack.state_machine_arn)
    return [e for page in pages for e in page["executions"]
            if e["name"].startswith(f"{name}-")]


def finish(stack: Any, recipe: str, build_id: str) -> dict:
    (result,) = wait_for_builds(stack, [{"recipe": recipe, "build_id": build_id}], timeout=300)
    return result


def test_build_checks_every_name_before_starting_any(amiforge: Any, stack: Any,
                                                     tmp_path: Path) -> None:
    write(tmp_path, "names-web")
    assert amiforge("publish", "--no-detect", str(tmp_path)).exit_code == 0
    result = amiforge("build", "names-web", "names-nope")
    assert result.exit_code == 2
    assert "'names-nope'" in result.output and "nothing was started" in result.output
    assert executions_of(stack, "names-web") == []


def test_status_and_history_show_a_build_from_its_start(amiforge: Any, stack: Any,
                                                        tmp_path: Path) -> None:
    write(tmp_path, "visible")
    published = json.loads(amiforge("publish", str(tmp_path), output="json").stdout)["recipes"]
    build_id = published[0]["build_started"]
    assert build_id
    status = {s["recipe"]: s for s in json.loads(amiforge("status", output="json").stdout)["recipes"]}
    assert status["visible"]["last_build"] == build_id
    # STARTING until Resolve runs, BUILDING after: never "never built".
    assert status["visible"]["last_status"] in {"STARTING", "BUILDING"}
    assert status["visible"]["execution_arn"].endswith(f":{build_id}")
    history = json.loads(amiforge("history", "visible", output="json").stdout)["builds"]
    assert [(b["build_id"], b["execution_arn"]) for b in history] == [
        (build_id, status["visible"]["execution_arn"])]
    assert finish(stack, "visible", build_id)["status"] == "AVAILABLE"
    assert stack.catalog.get("visible", build_id)["trigger"] == "publish"


def test_publish_wait_follows_its_builds_and_fails_if_one_failed(amiforge: Any,
                                                                 tmp_path: Path) -> None:
    good = write(tmp_path / "good", "wait-good")
    result = amiforge("publish", "--wait", str(good), output="json")
    assert result.exit_code == 0, result.output
    assert [(b["recipe"], b["status"]) for b in json.loads(result.stdout)["builds"]] == [
        ("wait-good", "AVAILABLE")]
    mixed = write(write(tmp_path / "mixed", "wait-ok"), "wait-bad", FAIL)
    result = amiforge("publish", "--wait", str(mixed))
    assert result.exit_code == 1
    assert "wait-bad" in result.stdout and "FAILED" in result.stdout
    assert "AVAILABLE" in result.stdout  # wait-ok, followed to its end too


def test_a_failed_build_is_visible_retried_after_backoff_then_left_alone(
        amiforge: Any, stack: Any, tmp_path: Path) -> None:
    write(tmp_path, "retrying", FAIL, retry_failed=1)
    published = json.loads(amiforge("publish", str(tmp_path), output="json").stdout)["recipes"]
    first = published[0]["build_started"]
    assert finish(stack, "retrying", first)["status"] == "FAILED"
    # The stack's detection period is 30 days: plan says failed, and when it retries.
    (plan,) = json.loads(amiforge("plan", str(tmp_path), output="json").stdout)["decisions"]
    assert (plan["action"], plan["reason"]) == ("skip", "failed")
    assert plan["detail"].startswith("failed: ") and "build script failed" in plan["detail"]
    assert f"(build {first}); retry 1 of 1 from " in plan["detail"]
    status = {s["recipe"]: s for s in json.loads(amiforge("status", output="json").stdout)["recipes"]}
    assert status["retrying"]["last_status"] == "FAILED"
    assert status["retrying"]["summary"].startswith("failed: ")
    assert status["retrying"]["summary"].endswith(f"(build {first})")
    assert detect({"recipes": ["retrying"]}, stack)["started"] == 0  # backoff not over
    # A detection a period later (here: a zero-length period) retries it, once.
    later = replace(stack, detect_schedule="rate(0 minutes)")
    (retry,) = detect({"recipes": ["retrying"], "trigger": "schedule"}, later)["decisions"]
    assert (retry["reason"], retry["outcome"]) == ("retry failed build", "started")
    assert retry["build_id"] == f"{first}-g2"
    assert finish(stack, "retrying", retry["build_id"])["status"] == "FAILED"
    (stop,) = detect({"recipes": ["retrying"]}, later)["decisions"]
    assert (stop["action"], stop["reason"]) == ("skip", "failed")
    assert stop["detail"].startswith("failed 2 times: fix the recipe, or `amiforge build`")
    assert len(executions_of(stack, "retrying")) == 2
    # A person can still build it: no --rebuild needed for a failed key.
    manual = json.loads(amiforge("build", "retrying", output="json").stdout)["builds"]
    assert (manual[0]["started"], manual[0]["build_id"]) == (True, f"{first}-g3")
    assert finish(stack, "retrying", manual[0]["build_id"])["status"] == "FAILED"


def test_a_resolve_failure_is_recorded_and_notified(amiforge: Any, stack: Any,
                                                    tmp_path: Path) -> None:
    sqs = stack.client("sqs")
    queue = sqs.create_queue(QueueName="resolve-failures")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    stack.client("sns").subscribe(TopicArn=stack.topic_arn, Protocol="sqs",
                                  Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    write(tmp_path, "unresolved")
    assert amiforge("publish", "--no-detect", str(tmp_path)).exit_code == 0
    recipe = recipe_from_document(stack.store.current("unresolved")["document"])
    gone = "ami-0000000000000dead"  # a base that vanished between detection and Resolve
    key = build_key("unresolved", recipe.hash, gone)
    assert start_and_claim(stack, recipe, key, gone, "test")
    result = finish(stack, "unresolved", key)
    assert result["status"] == "FAILED"
    assert gone in result["reason"]
    record = stack.catalog.get("unresolved", key)
    assert (record["build_key"], record["base_ami"]) == (key, gone)
    assert any(m.get("build_id") == key and m.get("status") == "FAILED"
               for m in receive_all(sqs, queue, 1) if isinstance(m, dict))
    status = {s["recipe"]: s for s in json.loads(amiforge("status", output="json").stdout)["recipes"]}
    assert status["unresolved"]["summary"].startswith("failed: NotFound: base image ")
    assert status["unresolved"]["summary"].endswith(f"(build {key})")


def run_cli(local_cloud: Any, stack: Any, *args: str) -> subprocess.CompletedProcess:
    """The installed console script, as five people at five terminals would run it."""
    amiforge = str(Path(sys.executable).with_name("amiforge"))
    return subprocess.run([amiforge, "--endpoint-url", local_cloud.endpoint, "--region",
                           local_cloud.region, "--stack", STACK, "--output", "json", *args],
                          capture_output=True, text=True, timeout=300, env=os.environ.copy())


def test_concurrent_builds_start_at_most_one_per_content_and_base(
        amiforge: Any, local_cloud: Any, stack: Any, tmp_path: Path) -> None:
    write(tmp_path, "racing")
    published = json.loads(amiforge("publish", str(tmp_path), output="json").stdout)["recipes"]
    built = finish(stack, "racing", published[0]["build_started"])
    assert built["status"] == "AVAILABLE"
    with ThreadPoolExecutor(5) as pool:
        runs = list(pool.map(lambda _: run_cli(local_cloud, stack, "build", "racing"), range(5)))
    assert [r.returncode for r in runs] == [0] * 5, [r.stderr for r in runs]
    reports = [json.loads(r.stdout)["builds"][0] for r in runs]
    assert {(b["started"], b["outcome"], b["image_id"]) for b in reports} == {
        (False, "already built", built["image_id"])}
    assert len(executions_of(stack, "racing")) == 1
    assert reports[0]["summary"].startswith(f"no: already built ({built['image_id']})")
    # Five --rebuild at once, with the functions' calls throttled: one build.
    before = local_cloud.faults.configure(fault_rate=0.3, seed=17)
    try:
        with ThreadPoolExecutor(5) as pool:
            runs = list(pool.map(lambda _: run_cli(local_cloud, stack, "build", "--rebuild",
                                                   "racing"), range(5)))
    finally:
        local_cloud.faults.configure(fault_rate=before["fault_rate"])
    assert [r.returncode for r in runs] == [0] * 5, [r.stderr for r in runs]
    reports = [json.loads(r.stdout)["builds"][0] for r in runs]
    assert sum(b["started"] for b in reports) == 1
    assert {b["build_id"] for b in reports} == {f"{built['build_id']}-g2"}
    assert len(executions_of(stack, "racing")) == 2
    assert finish(stack, "racing", f"{built['build_id']}-g2")["status"] == "AVAILABLE"


def test_retired_recipes_build_nothing_and_publishing_brings_them_back(
        amiforge: Any, local_cloud: Any, stack: Any, tmp_path: Path) -> None:
    family = f"retiring-{uuid.uuid4().hex[:8]}"
    local_cloud.release_base(name=f"{family}-1", owner="amazon")
    for name in ("kept-on", "retired-one"):
        write(tmp_path, name, family=family)
    assert amiforge("publish", "--wait", str(tmp_path)).exit_code == 0
    old_image = stack.catalog.latest("retired-one")["image_id"]
    parked = tmp_path.parent / "parked.yaml"
    (tmp_path / "retired-one.yaml").rename(parked)
    # A recipe deleted from the directory is named, not retired, by a plain publish...
    warned = amiforge("publish", str(tmp_path))
    assert warned.exit_code == 0
    assert "published but not in" in warned.stderr and "retired-one" in warned.stderr
    status = {s["recipe"]: s for s in json.loads(amiforge("status", output="json").stdout)["recipes"]}
    assert status["retired-one"]["retired_at"] is None
    # ... and retired by --prune: status says so, `latest` still answers. --prune retires
    # every published recipe the directory lacks: other tests' on this shared stack too,
    # which are published back (unchanged) afterwards.
    others = [r for r in stack.store.all_current() if not r.get("retired_at")
              and r["name"] not in ("kept-on", "retired-one")]
    try:
        pruned = amiforge("publish", "--prune", str(tmp_path))
        assert pruned.exit_code == 0
        assert "retired-one" in pruned.stderr.split(":")[1].replace(",", " ").split()
        assert {r["name"] for r in stack.store.all_current() if r.get("retired_at")} >= {
            "retired-one", *(r["name"] for r in others)}
    finally:
        for record in others:
            stack.store.publish(record["name"], record["hash"], record["document"],
                                record.get("git_commit"))
    status = {s["recipe"]: s for s in json.loads(amiforge("status", output="json").stdout)["recipes"]}
    assert status["retired-one"]["summary"].startswith("retired (")
    assert amiforge("latest", "retired-one").stdout.strip() == old_image
    # A new base: only the recipe still in service builds.
    local_cloud.release_base(name=f"{family}-2", owner="amazon")
    report = detect({"trigger": "test"}, stack)
    mine = {d["recipe"]: d for d in report["decisions"]
            if d["recipe"] in ("kept-on", "retired-one")}
    assert (mine["kept-on"]["reason"], mine["kept-on"]["outcome"]) == ("base changed",
                                                                        "started")
    assert (mine["retired-one"]["action"], mine["retired-one"]["reason"]) == ("skip",
                                                                              "retired")
    assert finish(stack, "kept-on", mine["kept-on"]["build_id"])["status"] == "AVAILABLE"
    refused = amiforge("build", "retired-one")
    assert refused.exit_code == 2 and "'retired-one' retired" in refused.output
    assert len(executions_of(stack, "retired-one")) == 1
    # Publishing it again brings it back, and it builds on the new base.
    parked.rename(tmp_path / "retired-one.yaml")
    back = json.loads(amiforge("publish", str(tmp_path), output="json").stdout)["recipes"]
    revived = {p["recipe"]: p for p in back}["retired-one"]
    assert revived["revived"] and revived["build_started"]
    assert finish(stack, "retired-one", revived["build_started"])["status"] == "AVAILABLE"


def test_retire_checks_every_name_first(amiforge: Any, stack: Any, tmp_path: Path) -> None:
    write(tmp_path, "retire-checked")
    assert amiforge("publish", "--no-detect", str(tmp_path)).exit_code == 0
    result = amiforge("retire", "retire-checked", "retire-nope")
    assert result.exit_code == 2 and "'retire-nope'" in result.output
    assert stack.store.current("retire-checked").get("retired_at") is None
    retired = json.loads(amiforge("retire", "retire-checked", output="json").stdout)["retired"]
    assert retired[0]["recipe"] == "retire-checked" and retired[0]["retired_at"]


def latest_everywhere(amiforge: Any, stack: Any, recipe: str) -> set[str]:
    """What the catalog, `amiforge latest` and the SSM parameter each say is newest."""
    parameter = stack.client("ssm").get_parameter(Name=f"/amiforge/{recipe}/latest")
    return {stack.catalog.latest(recipe)["image_id"],
            amiforge("latest", recipe).stdout.strip(), parameter["Parameter"]["Value"]}


def test_a_revert_re_releases_the_earlier_image_or_rebuilds_it_if_gone(
        amiforge: Any, local_cloud: Any, stack: Any, tmp_path: Path) -> None:
    family = f"revert-{uuid.uuid4().hex[:8]}"
    local_cloud.release_base(name=f"{family}-1", owner="amazon")
    write(tmp_path, "reverted", "echo first\n", family=family)
    first = json.loads(amiforge("publish", "--wait", str(tmp_path), output="json").stdout)["builds"][0]
    write(tmp_path, "reverted", "echo second\n", family=family)
    second = json.loads(amiforge("publish", "--wait", str(tmp_path), output="json").stdout)["builds"][0]
    assert latest_everywhere(amiforge, stack, "reverted") == {second["image_id"]}
    write(tmp_path, "reverted", "echo first\n", family=family)
    (plan,) = json.loads(amiforge("plan", str(tmp_path), output="json").stdout)["decisions"]
    assert (plan["action"], plan["reason"], plan["detail"]) == (
        "release", "re-release", f"re-release {first['image_id']} built as {first['build_id']}")
    (back,) = json.loads(amiforge("publish", str(tmp_path), output="json").stdout)["recipes"]
    assert (back["build_started"], back["re_released"]) == (None, first["build_id"])
    # latest is the first image again, in the catalog, the CLI and SSM; nothing was built.
    assert latest_everywhere(amiforge, stack, "reverted") == {first["image_id"]}
    assert len(executions_of(stack, "reverted")) == 2
    assert detect({"recipes": ["reverted"]}, stack)["decisions"][0]["reason"] == "up to date"
    # Back to the second content, whose image is then removed (pruned, say): built again.
    write(tmp_path, "reverted", "echo second\n", family=family)
    stack.client("ec2").deregister_image(ImageId=second["image_id"])
    (plan,) = json.loads(amiforge("plan", str(tmp_path), output="json").stdout)["decisions"]
    assert (plan["action"], plan["reason"]) == ("build", "recipe changed")
    (again,) = json.loads(amiforge("publish", str(tmp_path), output="json").stdout)["recipes"]
    assert (again["build_started"], again["build_outcome"]) == (
        f"{second['build_id']}-g2", "started")
    rebuilt = finish(stack, "reverted", again["build_started"])
    assert rebuilt["status"] == "AVAILABLE"
    assert latest_everywhere(amiforge, stack, "reverted") == {rebuilt["image_id"]}


def test_retire_purge_removes_unused_images_and_the_parameter_and_keeps_one_in_use(
        amiforge: Any, stack: Any, tmp_path: Path) -> None:
    name = f"purged-{uuid.uuid4().hex[:6]}"
    images = []
    for n in (1, 2):  # two versions, two images
        write(tmp_path, name, script=f"echo version {n}\n")
        assert amiforge("publish", "--wait", str(tmp_path)).exit_code == 0
        images.append(stack.catalog.latest(name)["image_id"])
    ec2, ssm = stack.client("ec2"), stack.client("ssm")
    parameter = f"/amiforge/{name}/latest"
    assert ssm.get_parameter(Name=parameter)["Parameter"]["Value"] == images[1]
    # The first image still runs somewhere: the purge must keep it, naming the use.
    runner = ec2.run_instances(ImageId=images[0], MinCount=1, MaxCount=1,
                               InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    try:
        result = amiforge("retire", "--purge", name, output="json")
        assert result.exit_code == 0, result.output
        (report,) = json.loads(result.stdout)["purged"]
        assert report["parameters_deleted"] == [stack.region]
        assert report["pruned"] == [images[1]]
        (kept,) = report["kept"]
        assert kept["image_id"] == images[0] and runner in kept["reason"]
        assert ec2.describe_images(ImageIds=[images[1]])["Images"] == []
        assert ec2.describe_images(ImageIds=[images[0]])["Images"]
        with pytest.raises(ssm.exceptions.ParameterNotFound):
            ssm.get_parameter(Name=parameter)
        assert stack.store.current(name)["retired_at"]
        statuses = {b["image_id"]: b["status"] for b in stack.catalog.history(name)}
        assert statuses == {images[0]: "AVAILABLE", images[1]: "PRUNED"}
    finally:
        ec2.terminate_instances(InstanceIds=[runner])
