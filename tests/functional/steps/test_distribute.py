"""Distribute on the local cloud: the image is copied to every region of
``image.regions``, the copy tagged at creation and recorded in the catalog at once; a
rerun reuses the copy it started; a copy still pending is reported, for AwaitCopies to
wait for (tests/functional/steps/test_image_wait.py); a failed copy fails the build."""

from __future__ import annotations

from typing import Any

import pytest
from tests.helpers import COPY, HOME, Publish, imaged

from amiforge.core.tags import BUILD_ID, STACK
from amiforge.errors import BuildFailed
from amiforge.localcloud.testing import images_of_build
from amiforge.steps.distribute import distribute
from amiforge.steps.env import StepEnv

REGIONS = f"regions: [{COPY}]\nkms_key_id: alias/golden\n"


def test_the_image_is_copied_tagged_and_recorded(env: StepEnv, published: Publish) -> None:
    state = imaged(env, published(image=REGIONS))
    build, home_image = state["build"], state["image"]["image_id"]

    result = distribute(state, env)

    (copy,) = images_of_build(env.client("ec2", COPY), build["build_id"])
    assert result == {"images": {HOME: home_image, COPY: copy["ImageId"]}, "ready": True,
                      "pending": []}
    tags = {t["Key"]: t["Value"] for t in copy["Tags"]}
    assert (tags[BUILD_ID], tags[STACK]) == (build["build_id"], env.stack_name)
    assert copy["Name"] == state["image"]["name"]
    assert env.catalog.get(build["recipe"], build["build_id"])["images"] == result["images"]


def test_a_rerun_reuses_the_copy_it_started(env: StepEnv, published: Publish) -> None:
    state = imaged(env, published(image=REGIONS))
    first = distribute(state, env)
    # A retried Distribute that lost its first answer starts from scratch: same copy.
    again = distribute(state, env)
    assert again["images"] == first["images"]
    assert len(images_of_build(env.client("ec2", COPY), state["build"]["build_id"])) == 1


def test_a_recipe_without_regions_keeps_its_home_image_only(env: StepEnv,
                                                           published: Publish) -> None:
    state = imaged(env, published())
    assert distribute(state, env) == {"images": {HOME: state["image"]["image_id"]},
                                      "ready": True, "pending": []}


def test_a_copy_still_pending_is_reported_for_awaitcopies(
        env: StepEnv, published: Publish, local_cloud: Any) -> None:
    state = imaged(env, published(image=REGIONS))
    local_cloud.image_pending_seconds = 30
    try:
        result = distribute(state, env)
    finally:
        local_cloud.image_pending_seconds = 0
    assert (result["ready"], result["pending"]) == (False, [COPY])
    assert set(result["images"]) == {HOME, COPY}


def test_a_failed_copy_fails_the_build_naming_it(env: StepEnv, published: Publish,
                                                 local_cloud: Any) -> None:
    state = imaged(env, published(image=REGIONS))
    knobs = local_cloud.faults.configure(image_fail_rate=1.0, image_fail_kinds=["copy"])
    try:
        with pytest.raises(BuildFailed, match=rf"copy ami-\w+ in {COPY} is failed: "
                                              "Client.SnapshotCreationFailed"):
            distribute(state, env)
    finally:
        local_cloud.faults.configure(**knobs)
