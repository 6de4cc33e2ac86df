"""Register on the local cloud: the catalog record becomes AVAILABLE first, then
``/amiforge/<recipe>/latest`` names the image in every region it lives in; the image
and its snapshots are shared; a build that is not the newest never takes ``latest``;
and a Register that fails after marking the record puts the parameter back and returns
the record to BUILDING, so the failure path can clean up."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from tests.helpers import COPY, HOME, Publish, imaged, instance_state, latest_value

from amiforge.errors import AwsCallFailed, BuildFailed
from amiforge.steps.distribute import distribute
from amiforge.steps.env import StepEnv
from amiforge.steps.register import register, register_and_finish

ACCOUNT = "111122223333"


def distributed(env: StepEnv, published: Publish, image: str = "") -> dict[str, Any]:
    state = imaged(env, published(image=image))
    state["distribution"] = distribute(state, env)
    return state


def test_catalog_then_latest_in_every_region_and_the_image_shared(
        env: StepEnv, published: Publish) -> None:
    state = distributed(env, published, f"regions: [{COPY}]\nshare_with: ['{ACCOUNT}']\n"
                                        "kms_key_id: alias/golden\n")
    build, images = state["build"], state["distribution"]["images"]

    summary = register(state, env)

    assert (summary["status"], summary["latest"], summary["images"]) == (
        "AVAILABLE", "latest", images)
    record = env.catalog.get(build["recipe"], build["build_id"])
    assert (record["status"], record["images"], record["available_recipe"]) == (
        "AVAILABLE", images, build["recipe"])
    assert record["parameters"] == [f"/amiforge/{build['recipe']}/latest"]
    assert {r: latest_value(env, build["recipe"], r) for r in (HOME, COPY)} == images
    assert env.catalog.latest(build["recipe"])["build_id"] == build["build_id"]
    ec2 = env.client("ec2")
    launch = ec2.describe_image_attribute(ImageId=images[HOME], Attribute="launchPermission")
    assert {p.get("UserId") for p in launch["LaunchPermissions"]} == {ACCOUNT}
    for snapshot in state["image"]["snapshot_ids"]:
        volume = ec2.describe_snapshot_attribute(SnapshotId=snapshot,
                                                 Attribute="createVolumePermission")
        assert {p.get("UserId") for p in volume["CreateVolumePermissions"]} == {ACCOUNT}


def test_an_older_build_finishing_late_never_takes_latest(env: StepEnv,
                                                         published: Publish) -> None:
    recipe = published()
    older, newer = imaged(env, recipe), imaged(env, recipe)
    register(newer, env)

    summary = register(older, env)

    assert summary["latest"] == f"newer build {newer['build']['build_id']} names latest"
    assert latest_value(env, recipe.name) == newer["image"]["image_id"]
    assert env.catalog.get(recipe.name, older["build"]["build_id"])["status"] == "AVAILABLE"


def test_a_register_that_fails_after_marking_puts_latest_back_and_unmarks(
        env: StepEnv, published: Publish) -> None:
    recipe = published()
    first, second = imaged(env, recipe), imaged(env, recipe)
    register(first, env)
    # The notification (after latest moved) fails: the topic is gone.
    broken = dataclasses.replace(env, topic_arn=env.topic_arn + "-deleted")

    with pytest.raises(AwsCallFailed) as info:
        register(second, broken)

    assert info.value.code == "NotFound"
    assert latest_value(env, recipe.name) == first["image"]["image_id"]
    record = env.catalog.get(recipe.name, second["build"]["build_id"])
    assert record["status"] == "BUILDING" and "available_recipe" not in record
    assert env.catalog.latest(recipe.name)["build_id"] == first["build"]["build_id"]


def test_an_image_gone_before_registering_fails_and_moves_nothing(
        env: StepEnv, published: Publish) -> None:
    state = distributed(env, published)
    image_id = state["image"]["image_id"]
    env.client("ec2").deregister_image(ImageId=image_id)
    with pytest.raises(BuildFailed, match=f"image {image_id} in {HOME} disappeared"):
        register(state, env)
    assert latest_value(env, state["build"]["recipe"]) is None
    assert env.catalog.get(state["build"]["recipe"],
                           state["build"]["build_id"])["status"] == "BUILDING"


def test_a_build_without_copies_is_cleaned_up_in_the_register_invocation(
        env: StepEnv, published: Publish) -> None:
    state = imaged(env, published())
    assert state["build"]["copies"] is False
    builder = state["launch"]["instance_id"]

    summary = register_and_finish(state, env)

    assert summary["status"] == "AVAILABLE"
    assert summary["cleanup"]["image_id"] == state["image"]["image_id"]
    assert instance_state(env, builder) in ("shutting-down", "terminated")
    assert latest_value(env, state["build"]["recipe"]) == state["image"]["image_id"]


def test_a_build_with_copies_leaves_the_cleanup_to_the_finish_state(
        env: StepEnv, published: Publish) -> None:
    state = distributed(env, published, f"regions: [{COPY}]\n")
    assert state["build"]["copies"] is True

    summary = register_and_finish(state, env)

    assert "cleanup" not in summary
    assert instance_state(env, state["launch"]["instance_id"]) == "stopped"


def test_a_cleanup_that_fails_after_registering_is_left_to_the_finish_state(
        env: StepEnv, published: Publish, monkeypatch: pytest.MonkeyPatch) -> None:
    """The image is registered all the same: never a failed build for a cleanup."""
    from amiforge.steps import register as register_step

    def unreachable(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
        raise AwsCallFailed("TerminateInstances", "RequestLimitExceeded", "slow down")

    monkeypatch.setattr(register_step, "finish", unreachable)
    state = imaged(env, published())

    summary = register_and_finish(state, env)

    assert summary["status"] == "AVAILABLE" and "cleanup" not in summary
    record = env.catalog.get(state["build"]["recipe"], state["build"]["build_id"])
    assert record["status"] == "AVAILABLE"


def test_a_retried_register_leaves_the_cleanup_to_the_finish_state(
        env: StepEnv, published: Publish) -> None:
    """An earlier attempt marked the record and died (its cleanup may be what killed it):
    the retry registers all the same, and cleans up nothing itself."""
    state = imaged(env, published())
    register(state, env)  # the attempt that died after marking

    summary = register_and_finish(state, env)

    assert summary["status"] == "AVAILABLE" and "cleanup" not in summary
    assert instance_state(env, state["launch"]["instance_id"]) == "stopped"
