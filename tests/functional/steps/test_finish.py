"""Finish and RecordFailure, through the deletion gate, on the local cloud (EC2, SSM, SQS
and the catalog table are all real); the cleanup queue's consumer is test_cleanup.py.

A good build's builder goes and its image stays; a failed build is recorded FAILED
before anything is cleaned, its builders and images removed except what ``latest``
names or what is in use; an unreachable region fails only its own work. Untrusted
cleanup messages (wildcards, unknown fields, another recipe's build id, a build this
stack does not know) delete nothing and land in the dead-letter queue with the reason.

Replaces tests/functional/steps/test_cleanup_gate.py (its FakeCatalog became the
catalog table; every test kept).
"""

from __future__ import annotations

import json

import pytest
from tests.helpers import (
    HOME,
    Publish,
    build_image,
    gate_names,
    image_listed,
    imaged,
    instance_state,
    latest_value,
    queued,
    seed,
)

from amiforge.localcloud.testing import images_of_build
from amiforge.steps.env import StepEnv
from amiforge.steps.finish import finish, needs_recheck, record_failure
from amiforge.steps.register import register


@pytest.fixture
def env(env_with_queues: StepEnv) -> StepEnv:
    return env_with_queues


# -- finish: after a good build ------------------------------------------------------------

def test_a_clean_finish_terminates_the_builder_and_queues_no_recheck(
        env: StepEnv, published: Publish) -> None:
    state = imaged(env, published())
    register(state, env)
    image_id = state["image"]["image_id"]

    done = finish(state, env)

    assert done["status"] == "AVAILABLE" and done["errors"] == {}
    assert done["terminated"] == [state["launch"]["instance_id"]]
    assert instance_state(env, state["launch"]["instance_id"]) in ("shutting-down",
                                                                   "terminated")
    assert image_listed(env, image_id) and done["deregistered"] == {}
    assert done["recheck"] is False and queued(env) == []


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
    assert image_listed(env, image_id) and not image_listed(env, stray)
    assert done["deregistered"] == {stray: HOME}
    # A stray image means a CreateImage raced this build: the queue looks again.
    assert done["recheck"] is True
    assert queued(env) == [{"recipe": build["recipe"], "build_id": build["build_id"],
                            "status": "AVAILABLE", "keep_image": image_id,
                            "regions": []}]


@pytest.mark.usefixtures("short_client_backoff")
def test_a_finish_that_could_not_reach_a_region_queues_a_recheck(
        env: StepEnv, published: Publish) -> None:
    state = imaged(env, published())
    register(state, env)
    build = state["build"]
    state = {**state, "build": {**build, "regions": ["zz-fake-9"]}}

    done = finish(state, env)

    assert set(done["errors"]) == {"zz-fake-9"} and done["recheck"] is True
    assert [m["build_id"] for m in queued(env)] == [build["build_id"]]


@pytest.mark.parametrize("done, recheck", [
    ({"terminated": ["i-0123456789abcdef0"], "deregistered": {}, "kept": {},
      "stack_deleted": True, "errors": {}}, False),
    ({"terminated": [], "deregistered": {}, "kept": {}, "stack_deleted": False,
      "errors": {}}, False),
    ({"deregistered": {}, "kept": {}, "stack_deleted": "error: throttled", "errors": {}},
     True),
    ({"deregistered": {}, "kept": {"ami-0123456789abcdef0": "in use"}, "errors": {}}, True),
    ({"deregistered": {}, "kept": {}, "errors": {"us-east-1 builders": "denied"}}, True),
])
def test_only_a_clean_finish_goes_without_a_recheck(done: dict, recheck: bool) -> None:
    assert needs_recheck(done) is recheck


# -- record_failure ------------------------------------------------------------------------

def test_the_failure_path_keeps_the_image_latest_names_and_ends_failed(env: StepEnv) -> None:
    recipe, build_id = gate_names()
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
    assert image_listed(env, image)
    assert f"latest names it in {HOME}" in result["kept"][image]
    assert not image_listed(env, stray)
    assert result["deregistered"] == {stray: HOME}


@pytest.mark.usefixtures("short_client_backoff")
def test_an_unreachable_region_fails_only_its_own_work(env: StepEnv) -> None:
    recipe, build_id = gate_names()
    image = build_image(env, recipe, build_id)
    seed(env, {"recipe": recipe, "build_id": build_id, "status": "BUILDING"})
    state = {"build": {"recipe": recipe, "build_id": build_id, "regions": ["zz-fake-9"]},
             "error": {"Error": "BuildFailed", "Cause": "copy to zz-fake-9 failed"}}
    result = record_failure(state, env)

    record = env.catalog.get(recipe, build_id)
    assert record["status"] == "FAILED"
    assert record["reason"] == "BuildFailed: copy to zz-fake-9 failed"
    assert not image_listed(env, image)  # the home region was cleaned
    assert images_of_build(env.client("ec2"), build_id) == []
    assert set(result["errors"]) == {"zz-fake-9"}


def test_a_failure_in_resolve_is_still_recorded_from_the_execution_input(
        env: StepEnv) -> None:
    recipe, build_id = gate_names()
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
    assert not image_listed(env, dying["image"]["image_id"])
    assert image_listed(env, good["image"]["image_id"])
