"""The build's cleanup, RecordFailure and the cleanup queue, through the deletion gate,
on the local cloud (EC2, SSM, SQS are the local cloud's; the catalog is a small
in-memory fake, as in test_prune_regions).

Untrusted cleanup messages (wildcards, unknown fields, another recipe's build id, a
build this stack does not know) delete nothing and land in the dead-letter queue with the
reason; the failure path never deletes what ``latest`` names or what is in use, and an
unreachable region fails only its own work.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from amiforge.aws.session import AwsContext
from amiforge.core.tags import BUILD_ID, BUILDER, RECIPE, ROLE
from amiforge.localcloud.testing import images_of_build, snapshots_of_build
from amiforge.steps.env import StepEnv
from amiforge.steps.finish import cleanup_messages, record_failure

HOME = "us-east-1"
BASE = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"


class FakeCatalog:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, recipe: str, build_id: str) -> dict[str, Any] | None:
        record = self.records.get((recipe, build_id))
        return dict(record) if record else None

    def mark_failed(self, recipe: str, build_id: str, **fields: Any) -> bool:
        record = self.records.get((recipe, build_id))
        if not record or record["status"] != "BUILDING":
            return False
        record.update(status="FAILED", **fields)
        return True


@pytest.fixture()
def aws(local_cloud: Any) -> AwsContext:
    return AwsContext(region=HOME, endpoint_url=local_cloud.endpoint)


@pytest.fixture()
def env(aws: AwsContext) -> StepEnv:
    sqs = aws.client("sqs")
    token = uuid.uuid4().hex[:8]
    env = StepEnv(catalog_table="catalog", recipes_table="recipes", aws=aws,
                  cleanup_dead_letter_url=sqs.create_queue(QueueName=f"dlq-{token}")["QueueUrl"])
    env.__dict__["catalog"] = FakeCatalog()  # cached_property: set it directly
    return env


def names() -> tuple[str, str]:
    recipe = f"gate-{uuid.uuid4().hex[:8]}"
    return recipe, f"{recipe}-{uuid.uuid4().hex[:20]}"


def builder(aws: AwsContext, recipe: str, build_id: str, image: str | None = None) -> str:
    ec2 = aws.client("ec2")
    image = image or aws.client("ssm").get_parameter(Name=BASE)["Parameter"]["Value"]
    tags = [{"Key": RECIPE, "Value": recipe}, {"Key": BUILD_ID, "Value": build_id},
            {"Key": ROLE, "Value": BUILDER}]
    return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.small",
                             TagSpecifications=[{"ResourceType": "instance", "Tags": tags}]
                             )["Instances"][0]["InstanceId"]


def build_image(aws: AwsContext, recipe: str, build_id: str) -> str:
    """An image of the build as CreateImage makes it (image and snapshots tagged)."""
    instance = builder(aws, recipe, build_id)
    tags = [{"Key": RECIPE, "Value": recipe}, {"Key": BUILD_ID, "Value": build_id}]
    return aws.client("ec2").create_image(
        InstanceId=instance, Name=f"img-{build_id}", NoReboot=True,
        TagSpecifications=[{"ResourceType": "image", "Tags": tags},
                           {"ResourceType": "snapshot", "Tags": tags}])["ImageId"]


def exists(aws: AwsContext, image_id: str) -> bool:
    try:
        return bool(aws.client("ec2").describe_images(ImageIds=[image_id])["Images"])
    except ClientError as err:
        assert err.response["Error"]["Code"] == "InvalidAMIID.NotFound"
        return False


def dead_letters(env: StepEnv) -> list[tuple[str, str]]:
    sqs = env.client("sqs")
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=env.cleanup_dead_letter_url, MaxNumberOfMessages=10,
                                  MessageAttributeNames=["All"]).get("Messages", [])
        if not got:
            return sorted(out)
        for message in got:
            out.append((message["Body"], message["MessageAttributes"]["reason"]["StringValue"]))
            sqs.delete_message(QueueUrl=env.cleanup_dead_letter_url,
                               ReceiptHandle=message["ReceiptHandle"])


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {"Records": [{"messageId": f"m{n}", "body": body,
                         "attributes": {"ApproximateReceiveCount": "1"}}
                        for n, body in enumerate(bodies)]}


def test_untrusted_messages_delete_nothing_and_are_dead_lettered_with_the_reason(
        aws: AwsContext, env: StepEnv) -> None:
    recipe, build_id = names()
    other_recipe, other_build = names()
    good = build_image(aws, recipe, build_id)
    other = build_image(aws, other_recipe, other_build)
    env.catalog.records[(recipe, build_id)] = {"recipe": recipe, "build_id": build_id,
                                               "status": "AVAILABLE", "image_id": good}
    env.catalog.records[(other_recipe, other_build)] = {
        "recipe": other_recipe, "build_id": other_build, "status": "AVAILABLE",
        "image_id": other}
    prefix = build_id[:len(recipe) + 3]
    bodies = {
        "wildcard": json.dumps({"recipe": recipe, "build_id": prefix + "*"}),
        "star": json.dumps({"recipe": recipe, "build_id": "*"}),
        "unknown field": json.dumps({"recipe": recipe, "build_id": build_id,
                                     "filters": [{"Name": "tag-key"}]}),
        "another recipe's build": json.dumps({"recipe": recipe, "build_id": other_build}),
        "unknown build": json.dumps({"recipe": recipe, "build_id": f"{recipe}-{'0' * 20}"}),
        "not json": "poison",
    }
    result = cleanup_messages(sqs_event(*bodies.values()), env)

    assert result == {"batchItemFailures": []}  # refused, not retried
    assert exists(aws, good) and exists(aws, other)
    assert snapshots_of_build(aws.client("ec2"), build_id)
    assert snapshots_of_build(aws.client("ec2"), other_build)
    letters = dict(dead_letters(env))
    assert set(letters) == set(bodies.values())
    assert "is not a build id" in letters[bodies["wildcard"]]
    assert "is not a build id" in letters[bodies["star"]]
    assert "unknown field(s) filters" in letters[bodies["unknown field"]]
    assert f"is not a build of recipe '{recipe}'" in letters[bodies["another recipe's build"]]
    assert "not in this stack's catalog" in letters[bodies["unknown build"]]
    assert "not JSON" in letters[bodies["not json"]]


def test_a_good_message_cleans_a_failed_build_but_keeps_an_image_in_use(
        aws: AwsContext, env: StepEnv) -> None:
    recipe, build_id = names()
    unused, used = build_image(aws, recipe, build_id), build_image(aws, recipe, build_id)
    user = aws.client("ec2").run_instances(ImageId=used, MinCount=1, MaxCount=1,
                                           InstanceType="t3.micro")["Instances"][0]
    env.catalog.records[(recipe, build_id)] = {"recipe": recipe, "build_id": build_id,
                                               "status": "FAILED"}
    body = json.dumps({"recipe": recipe, "build_id": build_id, "status": "FAILED",
                       "keep_image": None, "regions": []})
    assert cleanup_messages(sqs_event(body), env) == {"batchItemFailures": []}

    assert not exists(aws, unused)
    assert exists(aws, used)
    left = {s["SnapshotId"] for s in snapshots_of_build(aws.client("ec2"), build_id)}
    used_image = aws.client("ec2").describe_images(ImageIds=[used])["Images"][0]
    assert left == {m["Ebs"]["SnapshotId"] for m in used_image["BlockDeviceMappings"]
                    if "Ebs" in m}
    assert dead_letters(env) == []
    assert user["ImageId"] == used


def test_the_failure_path_keeps_the_image_latest_names_and_ends_failed(
        aws: AwsContext, env: StepEnv) -> None:
    recipe, build_id = names()
    image = build_image(aws, recipe, build_id)
    stray = build_image(aws, recipe, build_id)
    # A Register that set /amiforge/<recipe>/latest, then failed.
    aws.client("ssm").put_parameter(Name=f"/amiforge/{recipe}/latest", Value=image,
                                    Type="String", DataType="aws:ec2:image")
    env.catalog.records[(recipe, build_id)] = {"recipe": recipe, "build_id": build_id,
                                               "status": "BUILDING", "image_id": image}
    state = {"build": {"recipe": recipe, "build_id": build_id, "regions": []},
             "error": {"Error": "AwsCallFailed", "Cause": "register failed"}}
    result = record_failure(state, env)

    assert env.catalog.get(recipe, build_id)["status"] == "FAILED"
    assert exists(aws, image)
    assert f"latest names it in {HOME}" in result["kept"][image]
    assert not exists(aws, stray)
    assert result["deregistered"] == {stray: HOME}


def test_an_unreachable_region_fails_only_its_own_work(aws: AwsContext, env: StepEnv) -> None:
    recipe, build_id = names()
    image = build_image(aws, recipe, build_id)
    env.catalog.records[(recipe, build_id)] = {"recipe": recipe, "build_id": build_id,
                                               "status": "BUILDING"}
    state = {"build": {"recipe": recipe, "build_id": build_id, "regions": ["zz-fake-9"]},
             "error": {"Error": "BuildFailed", "Cause": "copy to zz-fake-9 failed"}}
    result = record_failure(state, env)

    record = env.catalog.get(recipe, build_id)
    assert record["status"] == "FAILED"
    assert record["reason"] == "BuildFailed: copy to zz-fake-9 failed"
    assert not exists(aws, image)  # the home region was cleaned
    assert images_of_build(aws.client("ec2"), build_id) == []
    assert set(result["errors"]) == {"zz-fake-9"}


def test_a_message_about_a_live_build_touches_nothing(aws: AwsContext, env: StepEnv) -> None:
    recipe, build_id = names()
    image = build_image(aws, recipe, build_id)
    live_builder = builder(aws, recipe, build_id)
    env.catalog.records[(recipe, build_id)] = {"recipe": recipe, "build_id": build_id,
                                               "status": "BUILDING"}
    body = json.dumps({"recipe": recipe, "build_id": build_id, "status": "FAILED"})
    assert cleanup_messages(sqs_event(body), env) == {"batchItemFailures": []}

    assert exists(aws, image)
    (instance,) = aws.client("ec2").describe_instances(InstanceIds=[live_builder])[
        "Reservations"][0]["Instances"]
    assert instance["State"]["Name"] in ("pending", "running")


def test_a_good_message_whose_region_fails_is_retried_and_the_rest_is_cleaned(
        aws: AwsContext, env: StepEnv) -> None:
    """A region that does not answer fails the message (SQS redelivers it, then its
    redrive policy dead-letters it), after the other regions were cleaned."""
    recipe, build_id = names()
    image = build_image(aws, recipe, build_id)
    env.catalog.records[(recipe, build_id)] = {"recipe": recipe, "build_id": build_id,
                                               "status": "FAILED"}
    body = json.dumps({"recipe": recipe, "build_id": build_id, "regions": ["zz-fake-9"]})
    assert cleanup_messages(sqs_event(body), env) == {
        "batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert not exists(aws, image)
    assert dead_letters(env) == []  # not refused: retried by SQS
