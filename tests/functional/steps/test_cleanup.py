"""The cleanup queue's consumer (``steps/cleanup.py``), through the deletion gate, on the
local cloud (EC2, SSM, SQS and the catalog table are all real): untrusted cleanup
messages (wildcards, unknown fields, another recipe's build id, a build this stack does
not know) delete nothing and land in the dead-letter queue with the reason; a good one
cleans a failed build except what is in use; an unreachable region is retried alone.
"""

from __future__ import annotations

import json

import pytest
from tests.helpers import (
    build_image,
    dead_letters,
    gate_names,
    image_listed,
    instance_state,
    seed,
    sqs_event,
    tagged_builder,
)

from amiforge.localcloud.testing import snapshots_of_build
from amiforge.steps.cleanup import cleanup_messages
from amiforge.steps.env import StepEnv


@pytest.fixture
def env(env_with_queues: StepEnv) -> StepEnv:
    return env_with_queues


# -- the cleanup queue's consumer ----------------------------------------------------------

def test_untrusted_messages_delete_nothing_and_are_dead_lettered_with_the_reason(
        env: StepEnv) -> None:
    recipe, build_id = gate_names()
    other_recipe, other_build = gate_names()
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
    assert image_listed(env, good) and image_listed(env, other)
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
    recipe, build_id = gate_names()
    unused, used = build_image(env, recipe, build_id), build_image(env, recipe, build_id)
    user = env.client("ec2").run_instances(ImageId=used, MinCount=1, MaxCount=1,
                                           InstanceType="t3.micro")["Instances"][0]
    seed(env, {"recipe": recipe, "build_id": build_id, "status": "FAILED"})
    body = json.dumps({"recipe": recipe, "build_id": build_id, "status": "FAILED",
                       "keep_image": None, "regions": []})
    assert cleanup_messages(sqs_event(body), env) == {"batchItemFailures": []}

    assert not image_listed(env, unused)
    assert image_listed(env, used)
    left = {s["SnapshotId"] for s in snapshots_of_build(env.client("ec2"), build_id)}
    used_image = env.client("ec2").describe_images(ImageIds=[used])["Images"][0]
    assert left == {m["Ebs"]["SnapshotId"] for m in used_image["BlockDeviceMappings"]
                    if "Ebs" in m}
    assert dead_letters(env) == []
    assert user["ImageId"] == used


def test_a_message_about_a_live_build_touches_nothing(env: StepEnv) -> None:
    recipe, build_id = gate_names()
    image = build_image(env, recipe, build_id)
    live_builder = tagged_builder(env, recipe, build_id)
    seed(env, {"recipe": recipe, "build_id": build_id, "status": "BUILDING"})
    body = json.dumps({"recipe": recipe, "build_id": build_id, "status": "FAILED"})
    assert cleanup_messages(sqs_event(body), env) == {"batchItemFailures": []}

    assert image_listed(env, image)
    assert instance_state(env, live_builder) not in ("shutting-down", "terminated")


@pytest.mark.usefixtures("short_client_backoff")
def test_a_good_message_whose_region_fails_is_retried_and_the_rest_is_cleaned(
        env: StepEnv) -> None:
    """A region that does not answer fails the message (SQS redelivers it, then its
    redrive policy dead-letters it), after the other regions were cleaned."""
    recipe, build_id = gate_names()
    image = build_image(env, recipe, build_id)
    seed(env, {"recipe": recipe, "build_id": build_id, "status": "FAILED"})
    body = json.dumps({"recipe": recipe, "build_id": build_id, "regions": ["zz-fake-9"]})
    assert cleanup_messages(sqs_event(body), env) == {
        "batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert not image_listed(env, image)
    assert dead_letters(env) == []  # not refused: retried by SQS

