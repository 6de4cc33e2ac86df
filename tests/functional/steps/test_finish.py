"""Finish, RecordFailure and the cleanup queue's consumer, through the deletion gate, on
the local cloud (EC2, SSM, SQS and the catalog table are all real).

A good build's builder goes and its image stays; a failed build is recorded FAILED
before anything is cleaned, its builders and images removed except what ``latest``
names or what is in use; an unreachable region fails only its own work. Untrusted
cleanup messages (wildcards, unknown fields, another recipe's build id, a build this
stack does not know) delete nothing and land in the dead-letter queue with the reason.

Replaces tests/functional/steps/test_cleanup_gate.py (its FakeCatalog became the
catalog table; every test kept).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from tests.helpers import (
    AL2023,
    HOME,
    Publish,
    build_id_of,
    dead_letters,
    imaged,
    instance_state,
    latest_value,
    seed,
    unique,
)

from amiforge.aws.session import AwsContext
from amiforge.core.tags import BUILD_ID, BUILDER, RECIPE, ROLE
from amiforge.localcloud.testing import images_of_build, snapshots_of_build
from amiforge.steps.env import StepEnv
from amiforge.steps.finish import cleanup_messages, failure_reason, finish, record_failure
from amiforge.steps.register import register


@pytest.fixture
def env(stack: StepEnv, aws: AwsContext) -> StepEnv:
    """The stack, with a dead-letter and a cleanup queue of this test's own."""
    sqs = aws.client("sqs")
    return dataclasses.replace(
        stack, cleanup_dead_letter_url=sqs.create_queue(QueueName=unique("dlq"))["QueueUrl"],
        cleanup_queue_url=sqs.create_queue(QueueName=unique("cleanup"))["QueueUrl"])


def names() -> tuple[str, str]:
    recipe = unique("gate")
    return recipe, build_id_of(recipe)


def builder(env: StepEnv, recipe: str, build_id: str, image: str | None = None) -> str:
    image = image or env.client("ssm").get_parameter(Name=AL2023)["Parameter"]["Value"]
    tags = [{"Key": RECIPE, "Value": recipe}, {"Key": BUILD_ID, "Value": build_id},
            {"Key": ROLE, "Value": BUILDER}]
    return env.client("ec2").run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.small",
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}]
    )["Instances"][0]["InstanceId"]


def build_image(env: StepEnv, recipe: str, build_id: str) -> str:
    """An image of the build as CreateImage makes it (image and snapshots tagged)."""
    instance = builder(env, recipe, build_id)
    tags = [{"Key": RECIPE, "Value": recipe}, {"Key": BUILD_ID, "Value": build_id}]
    return env.client("ec2").create_image(
        InstanceId=instance, Name=f"img-{build_id}", NoReboot=True,
        TagSpecifications=[{"ResourceType": "image", "Tags": tags},
                           {"ResourceType": "snapshot", "Tags": tags}])["ImageId"]


def exists(env: StepEnv, image_id: str) -> bool:
    try:
        return bool(env.client("ec2").describe_images(ImageIds=[image_id])["Images"])
    except ClientError as err:
        assert err.response["Error"]["Code"] == "InvalidAMIID.NotFound"
        return False


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {"Records": [{"messageId": f"m{n}", "body": body,
                         "attributes": {"ApproximateReceiveCount": "1"}}
                        for n, body in enumerate(bodies)]}


def queued(env: StepEnv) -> list[dict[str, Any]]:
    got = env.client("sqs").receive_message(QueueUrl=env.cleanup_queue_url,
                                            MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in got]


# -- finish: after a good build ------------------------------------------------------------

def test_finish_terminates_the_builder_keeps_the_image_and_queues_a_recheck(
        env: StepEnv, published: Publish) -> None:
    state = imaged(env, published())
    register(state, env)
    build, image_id = state["build"], state["image"]["image_id"]
    stray = build_image(env, build["recipe"], build["build_id"])  # a retried CreateImage's

    done = finish(state, env)

    assert done["status"] == "AVAILABLE" and done["errors"] == {}
    assert instance_state(env, state["launch"]["instance_id"]) in ("shutting-down",
                                                                   "terminated")
    assert state["launch"]["instance_id"] in done["terminated"]
    assert exists(env, image_id) and not exists(env, stray)
    assert done["deregistered"] == {stray: HOME}
    assert queued(env) == [{"recipe": build["recipe"], "build_id": build["build_id"],
                            "status": "AVAILABLE", "keep_image": image_id,
                            "regions": []}]


# -- record_failure ------------------------------------------------------------------------

def test_the_failure_path_keeps_the_image_latest_names_and_ends_failed(env: StepEnv) -> None:
    recipe, build_id = names()
    image = build_image(env, recipe, build_id)
    stray = build_image(env, recipe, build_id)
    # A Register that set /amiforge/<recipe>/latest, then failed.
    env.client("ssm").put_parameter(Name=f"/amiforge/{recipe}/latest", Value=image,
                                    Type="String", DataType="aws:ec2:image")
    seed(env, {"recipe": recipe, "build_id": build_id, "status": "BUILDING",
               "image_id": image})
    state = {"build": {"recipe": recipe, "build_id": build_id, "regions": []},
             "error": {"Error": "AwsCallFailed", "Cause": "register failed"}}
    result = record_failure(state, env)

    assert env.catalog.get(recipe, build_id)["status"] == "FAILED"
    assert exists(env, image)
    assert f"latest names it in {HOME}" in result["kept"][image]
    assert not exists(env, stray)
    assert result["deregistered"] == {stray: HOME}


def test_an_unreachable_region_fails_only_its_own_work(env: StepEnv) -> None:
    recipe, build_id = names()
    image = build_image(env, recipe, build_id)
    seed(env, {"recipe": recipe, "build_id": build_id, "status": "BUILDING"})
    state = {"build": {"recipe": recipe, "build_id": build_id, "regions": ["zz-fake-9"]},
             "error": {"Error": "BuildFailed", "Cause": "copy to zz-fake-9 failed"}}
    result = record_failure(state, env)

    record = env.catalog.get(recipe, build_id)
    assert record["status"] == "FAILED"
    assert record["reason"] == "BuildFailed: copy to zz-fake-9 failed"
    assert not exists(env, image)  # the home region was cleaned
    assert images_of_build(env.client("ec2"), build_id) == []
    assert set(result["errors"]) == {"zz-fake-9"}


def test_a_failure_in_resolve_is_still_recorded_from_the_execution_input(
        env: StepEnv) -> None:
    recipe, build_id = names()
    start = {"trigger": "schedule", "recipe_hash": "ab" * 32,
             "base_ami": "ami-0123456789abcdef0"}
    state = {"build": {"recipe": recipe, "build_id": build_id, "start": start},
             "error": {"Error": "NotFound", "Cause": json.dumps(
                 {"errorType": "NotFound", "errorMessage": "base image not found"})}}

    assert record_failure(state, env)["reason"] == "NotFound: base image not found"

    record = env.catalog.get(recipe, build_id)
    assert (record["status"], record["reason"], record["trigger"]) == (
        "FAILED", "NotFound: base image not found", "schedule")
    assert record["build_key"].startswith(f"{recipe}-")


def test_a_register_that_died_after_marking_is_undone_and_latest_put_back(
        env: StepEnv, published: Publish) -> None:
    recipe = published()
    good, dying = imaged(env, recipe), imaged(env, recipe)
    register(good, env)
    register(dying, env)  # marked AVAILABLE and moved latest, then the Lambda died
    assert latest_value(env, recipe.name) == dying["image"]["image_id"]

    result = record_failure({**dying, "error": {"Error": "States.Timeout"}}, env)

    assert result["reason"] == ("timed out: the builder did not stop within "
                                "build.timeout_minutes")
    record = env.catalog.get(recipe.name, dying["build"]["build_id"])
    assert record["status"] == "FAILED" and "available_recipe" not in record
    assert latest_value(env, recipe.name) == good["image"]["image_id"]
    assert not exists(env, dying["image"]["image_id"])
    assert exists(env, good["image"]["image_id"])


# -- the cleanup queue's consumer ----------------------------------------------------------

def test_untrusted_messages_delete_nothing_and_are_dead_lettered_with_the_reason(
        env: StepEnv) -> None:
    recipe, build_id = names()
    other_recipe, other_build = names()
    good = build_image(env, recipe, build_id)
    other = build_image(env, other_recipe, other_build)
    seed(env, {"recipe": recipe, "build_id": build_id, "status": "AVAILABLE",
               "image_id": good},
         {"recipe": other_recipe, "build_id": other_build, "status": "AVAILABLE",
          "image_id": other})
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
    assert exists(env, good) and exists(env, other)
    assert snapshots_of_build(env.client("ec2"), build_id)
    assert snapshots_of_build(env.client("ec2"), other_build)
    letters = dict(dead_letters(env))
    assert set(letters) == set(bodies.values())
    assert "is not a build id" in letters[bodies["wildcard"]]
    assert "is not a build id" in letters[bodies["star"]]
    assert "unknown field(s) filters" in letters[bodies["unknown field"]]
    assert f"is not a build of recipe '{recipe}'" in letters[bodies["another recipe's build"]]
    assert "not in this stack's catalog" in letters[bodies["unknown build"]]
    assert "not JSON" in letters[bodies["not json"]]


def test_a_good_message_cleans_a_failed_build_but_keeps_an_image_in_use(
        env: StepEnv) -> None:
    recipe, build_id = names()
    unused, used = build_image(env, recipe, build_id), build_image(env, recipe, build_id)
    user = env.client("ec2").run_instances(ImageId=used, MinCount=1, MaxCount=1,
                                           InstanceType="t3.micro")["Instances"][0]
    seed(env, {"recipe": recipe, "build_id": build_id, "status": "FAILED"})
    body = json.dumps({"recipe": recipe, "build_id": build_id, "status": "FAILED",
                       "keep_image": None, "regions": []})
    assert cleanup_messages(sqs_event(body), env) == {"batchItemFailures": []}

    assert not exists(env, unused)
    assert exists(env, used)
    left = {s["SnapshotId"] for s in snapshots_of_build(env.client("ec2"), build_id)}
    used_image = env.client("ec2").describe_images(ImageIds=[used])["Images"][0]
    assert left == {m["Ebs"]["SnapshotId"] for m in used_image["BlockDeviceMappings"]
                    if "Ebs" in m}
    assert dead_letters(env) == []
    assert user["ImageId"] == used


def test_a_message_about_a_live_build_touches_nothing(env: StepEnv) -> None:
    recipe, build_id = names()
    image = build_image(env, recipe, build_id)
    live_builder = builder(env, recipe, build_id)
    seed(env, {"recipe": recipe, "build_id": build_id, "status": "BUILDING"})
    body = json.dumps({"recipe": recipe, "build_id": build_id, "status": "FAILED"})
    assert cleanup_messages(sqs_event(body), env) == {"batchItemFailures": []}

    assert exists(env, image)
    assert instance_state(env, live_builder) not in ("shutting-down", "terminated")


def test_a_good_message_whose_region_fails_is_retried_and_the_rest_is_cleaned(
        env: StepEnv) -> None:
    """A region that does not answer fails the message (SQS redelivers it, then its
    redrive policy dead-letters it), after the other regions were cleaned."""
    recipe, build_id = names()
    image = build_image(env, recipe, build_id)
    seed(env, {"recipe": recipe, "build_id": build_id, "status": "FAILED"})
    body = json.dumps({"recipe": recipe, "build_id": build_id, "regions": ["zz-fake-9"]})
    assert cleanup_messages(sqs_event(body), env) == {
        "batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert not exists(env, image)
    assert dead_letters(env) == []  # not refused: retried by SQS


# -- failure reasons (formerly tests/unit/steps/test_finish.py) ---------------------------

def test_reason_from_a_lambda_error_names_type_and_message() -> None:
    cause = '{"errorType": "BuildFailed", "errorMessage": "build script failed (exit 3)"}'
    assert failure_reason({"Error": "BuildFailed", "Cause": cause}) == \
        "BuildFailed: build script failed (exit 3)"


def test_timeout_reason_points_at_the_recipe_field() -> None:
    assert failure_reason({"Error": "States.Timeout", "Cause": ""}) == \
        "timed out: the builder did not stop within build.timeout_minutes"


def test_unparseable_cause_is_kept_verbatim() -> None:
    assert failure_reason({"Error": "X", "Cause": "plain text"}) == "X: plain text"
    assert failure_reason(None) == "unknown failure"
