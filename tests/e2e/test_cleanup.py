"""Issue 7 journeys, cleanup: a killed build leaves nothing once swept; live builds and
AVAILABLE images are never touched; a poison cleanup message ends in the dead-letter
queue while the cleanup function goes on serving the others."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from amiforge.core.tags import BUILD_ID, BUILDER, RECIPE, ROLE
from amiforge.deploy.stack import stack_outputs
from amiforge.localcloud.testing import images_of_build, snapshots_of_build, wait_for
from amiforge.ops.builds import current_state

pytestmark = pytest.mark.e2e
STACK = "amiforge-e2e"
HANG = "# amiforge-sim: hang\nsleep infinity\n"


def as_json(result: Any) -> Any:
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def instances_of(aws: Any, build_id: str) -> list[dict]:
    reservations = aws.client("ec2").describe_instances(
        Filters=[{"Name": f"tag:{BUILD_ID}", "Values": [build_id]}])["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def live(instances: list[dict]) -> list[str]:
    return [i["InstanceId"] for i in instances
            if i["State"]["Name"] not in ("terminated", "shutting-down")]


def images_of(aws: Any, build_id: str) -> list[dict]:
    return images_of_build(aws.client("ec2"), build_id)


def snapshots_of(aws: Any, build_id: str) -> list[dict]:
    return snapshots_of_build(aws.client("ec2"), build_id)


def start_hanging_build(amiforge: Any, recipe_dir: Any, stack: Any, name: str) -> dict:
    """Publish a recipe whose builder never stops; return its build once AwaitStop waits."""
    directory = recipe_dir(name, HANG, timeout_minutes=600)
    assert amiforge("publish", "--no-detect", str(directory)).exit_code == 0
    (build,) = as_json(amiforge("build", name, output="json"))["builds"]
    assert build["started"], build

    def waiting() -> bool:
        record = stack.catalog.get(name, build["build_id"]) or {}
        return (current_state(stack, build["execution_arn"]) == ("RUNNING", "AwaitStop")
                and bool(record.get("task_token")))

    wait_for(waiting, timeout=60, interval=0.3, what=f"{name} waiting in AwaitStop")
    return build


def leak_image(aws: Any, instance_id: str, recipe: str, build_id: str) -> str:
    """Image the builder as CreateImage does (tagged image and snapshots): what a build
    that died right after CreateImage leaves."""
    tags = [{"Key": RECIPE, "Value": recipe}, {"Key": BUILD_ID, "Value": build_id}]
    return aws.client("ec2").create_image(
        InstanceId=instance_id, Name=f"leak-{build_id}"[:120], NoReboot=True,
        TagSpecifications=[{"ResourceType": "image", "Tags": tags},
                           {"ResourceType": "snapshot", "Tags": tags}])["ImageId"]


def sweep_rows(report: dict, build_id: str) -> list[tuple[str, str, str]]:
    return sorted((a["kind"], a["resource"], a["action"]) for a in report["actions"]
                  if a["build_id"] == build_id)


def test_a_build_stopped_mid_way_leaves_nothing_once_swept(amiforge: Any, aws: Any,
                                                           recipe_dir: Any, stack: Any) -> None:
    build = start_hanging_build(amiforge, recipe_dir, stack, "swept-stopped")
    build_id = build["build_id"]
    (builder,) = live(instances_of(aws, build_id))
    image_id = leak_image(aws, builder, "swept-stopped", build_id)
    assert snapshots_of(aws, build_id)
    stack.client("stepfunctions").stop_execution(executionArn=build["execution_arn"])
    wait_for(lambda: current_state(stack, build["execution_arn"])[0] == "ABORTED",
             what="the execution aborted")
    # Nothing on the failure path ran: the builder, the image and the record remain.
    assert live(instances_of(aws, build_id)) == [builder]
    assert stack.catalog.get("swept-stopped", build_id)["status"] == "BUILDING"

    planned = as_json(amiforge("sweep", "--dry-run", output="json"))
    rows = sweep_rows(planned, build_id)
    assert ("instance", builder, "terminate") in rows
    assert ("image", image_id, "deregister") in rows
    assert ("record", build_id, "mark-failed") in rows
    assert any(kind == "snapshot" and action == "delete" for kind, _, action in rows)
    assert live(instances_of(aws, build_id)) == [builder]  # a dry run changes nothing
    # The stack's scheduled Sweep function runs the same code and plans the same.
    response = aws.client("lambda").invoke(FunctionName=f"{STACK}-sweep",
                                           Payload=json.dumps({"dry_run": True}))
    assert "FunctionError" not in response
    assert sweep_rows(json.loads(response["Payload"].read()), build_id) == rows

    swept = as_json(amiforge("sweep", output="json"))
    assert sweep_rows(swept, build_id) == rows
    assert {a["outcome"] for a in swept["actions"] if a["build_id"] == build_id} == {"done"}
    assert live(instances_of(aws, build_id)) == []
    assert images_of(aws, build_id) == []
    assert snapshots_of(aws, build_id) == []
    record = stack.catalog.get("swept-stopped", build_id)
    assert record["status"] == "FAILED"
    assert "swept" in record["reason"] and "ABORTED" in record["reason"]
    # A second sweep finds nothing more of this build.
    assert sweep_rows(as_json(amiforge("sweep", output="json")), build_id) == []


def test_the_sweeper_leaves_live_builds_and_available_images_alone(
        amiforge: Any, aws: Any, recipe_dir: Any, stack: Any) -> None:
    directory = recipe_dir("swept-good")
    assert amiforge("publish", "--no-detect", str(directory)).exit_code == 0
    (good,) = as_json(amiforge("build", "--wait", "swept-good", output="json"))["builds"]
    assert good["status"] == "AVAILABLE", good
    good_snapshots = {s["SnapshotId"] for s in snapshots_of(aws, good["build_id"])}
    assert good_snapshots
    running = start_hanging_build(amiforge, recipe_dir, stack, "swept-live")
    (builder,) = live(instances_of(aws, running["build_id"]))

    report = as_json(amiforge("sweep", output="json"))

    assert {a["action"] for a in report["actions"]
            if a["build_id"] == running["build_id"]} == {"leave"}
    assert live(instances_of(aws, running["build_id"])) == [builder]
    assert current_state(stack, running["execution_arn"])[0] == "RUNNING"
    assert stack.catalog.get("swept-live", running["build_id"])["status"] == "BUILDING"
    assert sweep_rows(report, good["build_id"]) == []
    assert [i["ImageId"] for i in images_of(aws, good["build_id"])] == [good["image_id"]]
    assert {s["SnapshotId"] for s in snapshots_of(aws, good["build_id"])} == good_snapshots

    # A build still RUNNING past its budget (every launch's timeout, the image wait and a
    # margin: 600 + 240 + 30 minutes here) is dead all the same: make it two days old.
    old = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    stack.catalog.update("swept-live", running["build_id"], created_at=old)
    report = as_json(amiforge("sweep", output="json"))
    actions = {a["action"] for a in report["actions"] if a["build_id"] == running["build_id"]}
    assert actions == {"stop", "mark-failed", "terminate"}
    assert current_state(stack, running["execution_arn"])[0] == "ABORTED"
    assert live(instances_of(aws, running["build_id"])) == []
    record = stack.catalog.get("swept-live", running["build_id"])
    assert record["status"] == "FAILED"
    assert "longer than its budget" in record["reason"]


def leftover_builder(aws: Any, stack: Any, build_id: str) -> str:
    """A builder of a finished build that nothing terminated (the cleanup queue's job)."""
    base = stack.client("ssm").get_parameter(
        Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64")
    tags = [{"Key": ROLE, "Value": BUILDER}, {"Key": RECIPE, "Value": "cleanup-e2e"},
            {"Key": BUILD_ID, "Value": build_id}]
    return aws.client("ec2").run_instances(
        ImageId=base["Parameter"]["Value"], MinCount=1, MaxCount=1, InstanceType="t3.small",
        UserData="#!/bin/bash\n" + HANG,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]["InstanceId"]


def drain(sqs: Any, url: str) -> list[tuple[str, str]]:
    """Every message of the queue as (body, reason attribute or "")."""
    out = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                       MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            return out
        for message in messages:
            reason = message.get("MessageAttributes", {}).get("reason", {})
            out.append((message["Body"], reason.get("StringValue", "")))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def failed_build(stack: Any, recipe: str) -> str:
    """A FAILED build of ``recipe`` in the catalog, with an exact build id."""
    build_id = f"{recipe}-{uuid.uuid4().hex[:20]}"
    stack.catalog.put_many([{"recipe": recipe, "build_id": build_id, "status": "FAILED",
                             "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                             "reason": "e2e"}])
    return build_id


def test_a_poison_cleanup_message_ends_in_the_dead_letter_queue(aws: Any, stack: Any) -> None:
    outputs = stack_outputs(aws, STACK)
    queue, dead_letters = outputs["CleanupQueueUrl"], outputs["CleanupDeadLetterQueueUrl"]
    sqs = stack.client("sqs")
    warm = aws.client("lambda").invoke(FunctionName=f"{STACK}-cleanup",
                                       Payload=json.dumps({"Records": []}))
    assert json.loads(warm["Payload"].read()) == {"batchItemFailures": []}
    token = uuid.uuid4().hex[:8]
    first, second = failed_build(stack, "cleanup-e2e"), failed_build(stack, "cleanup-e2e")
    builder = leftover_builder(aws, stack, first)
    poison = f"poison {token}: not a cleanup message"
    sqs.send_message_batch(QueueUrl=queue, Entries=[
        {"Id": "poison", "MessageBody": poison},
        {"Id": "good", "MessageBody": json.dumps(
            {"recipe": "cleanup-e2e", "build_id": first, "status": "FAILED",
             "keep_image": None})}])
    # The good message of the same batch is served at once...
    wait_for(lambda: not live(instances_of(aws, first)), timeout=30,
             what="the leftover builder terminated")
    # ...the poison is refused, not retried: it goes to the dead-letter queue with why.
    seen: list[tuple[str, str]] = []
    wait_for(lambda: seen.extend(drain(sqs, dead_letters)) or poison in dict(seen),
             timeout=60, interval=0.5, what="the poison message in the dead-letter queue")
    assert [(b, r) for b, r in seen if token in b] == [
        (poison, "the body is not JSON (Expecting value)")]
    # And the function keeps serving later messages.
    builder = leftover_builder(aws, stack, second)
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(
        {"recipe": "cleanup-e2e", "build_id": second, "status": "FAILED",
         "keep_image": None}))
    wait_for(lambda: not live(instances_of(aws, second)), timeout=30,
             what="the second leftover builder terminated")
    assert builder not in live(instances_of(aws, second))


def test_untrusted_cleanup_messages_delete_nothing_and_are_dead_lettered(
        amiforge: Any, aws: Any, recipe_dir: Any, stack: Any) -> None:
    """Issue 15's attack: a wildcard build id deregistered other builds' AVAILABLE images.
    Now a wildcard, unknown fields and another recipe's build id delete nothing."""
    outputs = stack_outputs(aws, STACK)
    queue, dead_letters = outputs["CleanupQueueUrl"], outputs["CleanupDeadLetterQueueUrl"]
    sqs = stack.client("sqs")
    drain(sqs, dead_letters)
    built = {}
    for name in ("untrusted-a", "untrusted-b"):
        assert amiforge("publish", "--no-detect", str(recipe_dir(name))).exit_code == 0
        (build,) = as_json(amiforge("build", "--wait", name, output="json"))["builds"]
        assert build["status"] == "AVAILABLE", build
        built[name] = build
    a, b = built["untrusted-a"], built["untrusted-b"]
    bodies = {
        "wildcard": {"recipe": "untrusted-a", "build_id": a["build_id"][:16] + "*"},
        "everything": {"recipe": "untrusted-a", "build_id": "*"},
        "unknown field": {"recipe": "untrusted-a", "build_id": a["build_id"],
                          "status": "FAILED", "filters": [{"Name": "tag-key"}]},
        "another recipe's build": {"recipe": "untrusted-a", "build_id": b["build_id"],
                                   "status": "FAILED"},
    }
    for body in bodies.values():
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))
    seen: dict[str, str] = {}
    wait_for(lambda: seen.update(drain(sqs, dead_letters)) or len(seen) >= len(bodies),
             timeout=60, interval=0.5, what="the refused messages in the dead-letter queue")
    reasons = {kind: seen[json.dumps(body)] for kind, body in bodies.items()}
    assert "is not a build id (patterns are refused)" in reasons["wildcard"]
    assert "'*' is not a build id" in reasons["everything"]
    assert reasons["unknown field"].startswith("unknown field(s) filters")
    assert reasons["another recipe's build"] == (
        f"build_id {b['build_id']!r} is not a build of recipe 'untrusted-a'")
    for build in (a, b):
        (image,) = images_of(aws, build["build_id"])
        assert image["ImageId"] == build["image_id"] and image["State"] == "available"
        assert snapshots_of(aws, build["build_id"])
        assert stack.catalog.get(build["recipe"], build["build_id"])["status"] == "AVAILABLE"


def test_a_tagged_copy_in_use_survives_the_sweep(amiforge: Any, aws: Any, recipe_dir: Any,
                                                 stack: Any) -> None:
    assert amiforge("publish", "--no-detect", str(recipe_dir("swept-copy"))).exit_code == 0
    (build,) = as_json(amiforge("build", "--wait", "swept-copy", output="json"))["builds"]
    assert build["status"] == "AVAILABLE", build
    ec2 = aws.client("ec2")
    copy = ec2.copy_image(SourceImageId=build["image_id"], SourceRegion=aws.region,
                          Name=f"copy-{build['build_id']}", CopyImageTags=True)["ImageId"]
    tags = {t["Key"]: t["Value"] for t in ec2.describe_images(ImageIds=[copy])["Images"][0]
            ["Tags"]}
    assert tags[BUILD_ID] == build["build_id"]  # it carries amiforge's tags
    instance = ec2.run_instances(ImageId=copy, MinCount=1, MaxCount=1,
                                 InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    try:
        planned = as_json(amiforge("sweep", "--dry-run", output="json"))
        swept = as_json(amiforge("sweep", output="json"))
        for report in (planned, swept):
            (row,) = [a for a in report["actions"] if a["resource"] == copy]
            assert row["action"] == "keep", row
            assert row["reason"] == f"in use: instance {instance} (running)"
        assert {i["ImageId"] for i in images_of(aws, build["build_id"])} == {
            build["image_id"], copy}
    finally:
        ec2.terminate_instances(InstanceIds=[instance])


@pytest.fixture
def disabled_region(local_cloud: Any) -> Iterator[str]:
    """An opt-in region this account has not enabled: every call there is refused
    (AuthFailure), as on AWS. ``validate`` accepts the name; only AWS can say no."""
    region = "ap-east-1"
    before = local_cloud.faults.configure(disabled_regions=[region])
    try:
        yield region
    finally:
        local_cloud.faults.configure(disabled_regions=before["disabled_regions"])


def test_an_unreachable_region_fails_its_own_build_and_nothing_else(
        amiforge: Any, aws: Any, recipe_dir: Any, stack: Any, disabled_region: str) -> None:
    """A recipe copying to a region the account cannot reach: its build ends FAILED with
    the reason (not BUILDING), and sweep and prune still complete for everything else."""
    far = recipe_dir("far-away", extra=f"  regions: [{disabled_region}]\n")
    recipe_dir("near-by")
    assert amiforge("publish", "--no-detect", str(far)).exit_code == 0
    (failed,) = as_json(amiforge("build", "--wait", "far-away", output="json"))["builds"]
    assert failed["status"] == "FAILED", failed
    record = stack.catalog.get("far-away", failed["build_id"])
    assert record["status"] == "FAILED" and record["reason"], record
    assert images_of(aws, failed["build_id"]) == []  # the home region was cleaned
    (good,) = as_json(amiforge("build", "--wait", "near-by", output="json"))["builds"]
    assert good["status"] == "AVAILABLE", good

    for args in (("sweep", "--dry-run"), ("sweep",)):
        result = amiforge(*args, output="json")
        assert "Traceback" not in result.output
        report = json.loads(result.stdout)
        assert disabled_region in report["regions"]
        errors = [a for a in report["actions"] if a["outcome"] == "error"]
        assert {a["region"] for a in errors} == {disabled_region}, errors
    assert [i["ImageId"] for i in images_of(aws, good["build_id"])] == [good["image_id"]]
    pruned = amiforge("prune", output="json")
    assert pruned.exit_code == 0, pruned.output
    kept = {d["build_id"]: d for d in json.loads(pruned.stdout)["decisions"]}
    assert kept[good["build_id"]]["action"] == "keep"
