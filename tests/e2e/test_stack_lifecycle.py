"""Issue 15/17 journeys on a stack of their own: a deploy keeps the settings it was not
told to change; destroy keeps the data and a later deploy of the same name carries on."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from amiforge.aws import ssm as ssm_api
from amiforge.cli.main import cli
from amiforge.deploy import stack as stack_api
from amiforge.localcloud.testing import wait_for
from amiforge.ops.builds import wait_for_builds
from amiforge.ops.connect import connect

pytestmark = pytest.mark.e2e


def runner_for(local_cloud: Any, stack: str) -> Callable[..., Result]:
    def run(*args: str, output: str = "json", input: str | None = None) -> Result:
        return CliRunner().invoke(cli, ["--endpoint-url", local_cloud.endpoint, "--region",
                                        local_cloud.region, "--stack", stack, "--output",
                                        output, *args], input=input, catch_exceptions=False)
    return run


def parameters(aws: Any, stack: str) -> dict[str, str]:
    described = stack_api.describe_stack(aws, stack)
    assert described is not None
    return {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}


def test_deploy_keeps_values_not_given_and_reset_returns_to_defaults(
        local_cloud: Any, aws: Any) -> None:
    run = runner_for(local_cloud, "amiforge-params")
    first = run("deploy", "-p", "SecondsPerMinute=1", "-p", "PollSeconds=1")
    assert first.exit_code == 0, first.output
    assert {"parameter": "PollSeconds", "old": None, "new": "1"} in json.loads(
        first.stdout)["parameter_changes"]

    second = run("deploy", "-p", "DetectSchedule=rate(6 hours)")
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["parameter_changes"] == [
        {"parameter": "DetectSchedule", "old": "rate(1 hour)", "new": "rate(6 hours)"}]
    kept = parameters(aws, "amiforge-params")
    assert (kept["SecondsPerMinute"], kept["PollSeconds"], kept["DetectSchedule"]) == (
        "1", "1", "rate(6 hours)")

    text = run("deploy", "--reset-parameters", "-p", "PollSeconds=1", output="text")
    assert text.exit_code == 0, text.output
    assert "parameter SecondsPerMinute: 1 -> 60" in text.stdout
    assert "parameter DetectSchedule: rate(6 hours) -> rate(1 hour)" in text.stdout
    reset = parameters(aws, "amiforge-params")
    assert (reset["SecondsPerMinute"], reset["PollSeconds"], reset["DetectSchedule"]) == (
        "60", "1", "rate(1 hour)")

    unknown = run("deploy", "-p", "PolSeconds=1", output="text")
    assert unknown.exit_code == 2
    assert "-p PolSeconds: the stack template has no such parameter" in unknown.output

    # The tables of a stack are chosen when it is created, and must exist.
    swap = run("deploy", "-p", "RetainedCatalogTable=other", output="text")
    assert swap.exit_code == 2
    assert "the tables of a stack can only be chosen when it is created" in swap.output
    missing = runner_for(local_cloud, "amiforge-nowhere")(
        "deploy", "-p", "RetainedCatalogTable=no-such-table", output="text")
    assert missing.exit_code == 2
    assert "-p RetainedCatalogTable=no-such-table: there is no DynamoDB table" in missing.output
    assert stack_api.describe_stack(aws, "amiforge-nowhere") is None


LIFE_PARAMETERS = ("-p", "SecondsPerMinute=1", "-p", "PollSeconds=1",
                   "-p", "DetectSchedule=rate(30 days)", "-p", "SweepSchedule=rate(30 days)",
                   "-p", "PruneSchedule=rate(30 days)")


def write_recipe(directory: Path, name: str, script: str) -> Path:
    (directory / "scripts").mkdir(parents=True, exist_ok=True)
    (directory / "scripts" / f"{name}.sh").write_text("#!/bin/bash\n" + script)
    (directory / f"{name}.yaml").write_text(textwrap.dedent(f"""\
        name: {name}
        base:
          ssm_parameter: /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64
        build:
          user_data: scripts/{name}.sh
          timeout_minutes: 120
          retries: 0
        retention: {{keep: 1, max_age_days: null}}
        """))
    return directory


def publish_and_wait(run: Callable[..., Result], env: Any, directory: Path,
                     name: str) -> dict:
    published = run("publish", str(directory))
    assert published.exit_code == 0, published.output
    (entry,) = json.loads(published.stdout)["recipes"]
    (record,) = wait_for_builds(env, [{"recipe": name, "build_id": entry["build_started"]}],
                                poll=0.2, timeout=180)
    assert record["status"] == "AVAILABLE", record
    return record


def test_destroy_keeps_the_data_and_a_new_deploy_carries_on(
        local_cloud: Any, aws: Any, tmp_path: Path) -> None:
    stack, name = "amiforge-life", "life"
    run = runner_for(local_cloud, stack)
    assert run("deploy", *LIFE_PARAMETERS).exit_code == 0
    env = connect(aws, stack)
    tables = (env.catalog_table, env.recipes_table)
    old = publish_and_wait(run, env, write_recipe(tmp_path, name, "echo one\n"), name)
    new = publish_and_wait(run, env, write_recipe(tmp_path, name, "echo two\n"), name)

    # A build in flight: destroy refuses, naming it, and changes nothing.
    published = run("publish", str(write_recipe(tmp_path, name, "# amiforge-sim: hang\n")))
    (entry,) = json.loads(published.stdout)["recipes"]
    running = entry["build_started"]
    ec2 = aws.client("ec2")

    def builder() -> list[dict]:
        return [i for r in ec2.describe_instances(Filters=[
            {"Name": "tag:amiforge:build-id", "Values": [running]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"]
            for i in r["Instances"]]

    wait_for(builder, timeout=60, what=f"the builder of {running}")
    refused = run("destroy", "--yes", output="text")
    assert refused.exit_code == 1
    assert f"stack {stack} has 1 build(s) running: {running}" in refused.output
    assert "--force" in refused.output
    assert stack_api.describe_stack(aws, stack)["StackStatus"].endswith("_COMPLETE")

    forced = run("destroy", "--yes", "--force")
    assert forced.exit_code == 0, forced.output
    done = json.loads(forced.stdout)
    assert [b["build_id"] for b in done["cancelled"]] == [running]
    assert done["retained"] == {"RetainedCatalogTable": tables[0],
                                "RetainedRecipesTable": tables[1]}
    assert stack_api.describe_stack(aws, stack) is None
    assert builder() == []
    record = env.catalog.get(name, running)
    assert (record["status"], record["reason"]) == ("CANCELLED", "stack destroyed")
    assert done["cancelled"][0]["stopped"] is True
    assert done["cancelled"][0]["terminated"]  # its builder, terminated by the cleanup

    # A late invocation of a deleted function recreates its log group (Lambda does that);
    # the new stack must still be creatable.
    logs = aws.client("logs")
    leftover = f"/aws/lambda/{stack}-register"
    if not logs.describe_log_groups(logGroupNamePrefix=leftover)["logGroups"]:
        logs.create_log_group(logGroupName=leftover)

    # Deploy again under the same name: the retained tables are the stack's again.
    again = run("deploy", *LIFE_PARAMETERS)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["reattached"] == {"RetainedCatalogTable": tables[0],
                                                      "RetainedRecipesTable": tables[1]}
    env = connect(aws, stack)
    assert (env.catalog_table, env.recipes_table) == tables
    assert run("latest", name, output="text").stdout.strip() == new["image_id"]
    history = json.loads(run("history", name).stdout)["builds"]
    assert {b["build_id"] for b in history} == {old["build_id"], new["build_id"], running}

    pruned = run("prune", name)
    assert pruned.exit_code == 0, pruned.output
    decisions = {d["image_id"]: d for d in json.loads(pruned.stdout)["decisions"]}
    assert decisions[old["image_id"]]["action"] == "prune"
    assert decisions[new["image_id"]]["action"] == "keep"
    assert env.catalog.get(name, old["build_id"])["status"] == "PRUNED"
    assert ec2.describe_images(ImageIds=[new["image_id"]])["Images"]

    # Updating the stack keeps the re-attached tables, even with --reset-parameters.
    reset = run("deploy", "--reset-parameters", *LIFE_PARAMETERS)
    assert reset.exit_code == 0, reset.output
    assert (connect(aws, stack).catalog_table, connect(aws, stack).recipes_table) == tables


def test_delete_data_lists_everything_asks_and_keeps_only_images_in_use(
        local_cloud: Any, aws: Any, tmp_path: Path) -> None:
    stack, name = "amiforge-gone", "gone"
    run = runner_for(local_cloud, stack)
    assert run("deploy", *LIFE_PARAMETERS).exit_code == 0
    env = connect(aws, stack)
    tables = [env.catalog_table, env.recipes_table]
    used = publish_and_wait(run, env, write_recipe(tmp_path, name, "echo one\n"), name)
    unused = publish_and_wait(run, env, write_recipe(tmp_path, name, "echo two\n"), name)
    ec2, ssm = aws.client("ec2"), aws.client("ssm")
    instance = ec2.run_instances(ImageId=used["image_id"], MinCount=1, MaxCount=1,
                                 InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    plain = run("destroy", "--yes", output="text")  # the data outlives the stack...
    assert plain.exit_code == 0, plain.output
    assert f"kept its catalog and recipe tables ({' and '.join(sorted(tables))};" in \
        plain.output

    declined = run("destroy", "--delete-data", output="text", input="n\n")
    assert declined.exit_code == 1
    for shown in (*tables, f"/amiforge/{name}/latest", used["image_id"], unused["image_id"]):
        assert shown in declined.output
    listed = aws.client("dynamodb").list_tables()["TableNames"]
    assert set(tables) <= set(listed)  # ...and nothing went without a yes

    done = run("destroy", "--delete-data", input="y\n")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout[done.stdout.index("{"):])
    outcomes = {b["image_id"]: b["outcome"] for b in report["images"]}
    assert outcomes[unused["image_id"]] == "pruned"
    assert outcomes[used["image_id"]].startswith("kept: in use (")
    assert instance in outcomes[used["image_id"]]
    assert ec2.describe_images(ImageIds=[used["image_id"]])["Images"]
    assert not ec2.describe_images(Owners=["self"], Filters=[
        {"Name": "image-id", "Values": [unused["image_id"]]}])["Images"]
    assert ssm_api.get_value(ssm, f"/amiforge/{name}/latest") is None
    assert report["tables_deleted"] == dict.fromkeys(tables, True)
    assert not set(tables) & set(aws.client("dynamodb").list_tables()["TableNames"])
    bucket = stack_api.artifact_bucket_name(aws)
    assert (report["bucket_deleted"] == {bucket: True}) == (not report["bucket_kept_for"])
    again = run("destroy", "--delete-data", "--yes", output="text")
    assert again.exit_code == 2 and "nothing to delete" in again.output


def test_destroy_of_a_stack_without_outputs_deletes_it(local_cloud: Any, aws: Any) -> None:
    """A first create that rolled back has no state machine: nothing to refuse over."""
    cfn = aws.client("cloudformation")
    cfn.create_stack(StackName="amiforge-bare", TemplateBody=json.dumps({
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}))
    wait_for(lambda: not stack_api.describe_stack(aws, "amiforge-bare")["StackStatus"]
             .endswith("IN_PROGRESS"), timeout=60, what="the bare stack")
    done = runner_for(local_cloud, "amiforge-bare")("destroy", "--yes")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {"version": 1, "stack": "amiforge-bare",
                                       "deleted": True, "cancelled": [], "retained": {}}
    assert stack_api.describe_stack(aws, "amiforge-bare") is None
