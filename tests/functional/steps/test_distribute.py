"""Distribute on the local cloud: the image is copied to every region of
``image.regions``, the copy tagged at creation and recorded in the catalog at once; a
rerun reuses the copy it started; a copy that never becomes available fails the build
after the last poll."""

from __future__ import annotations

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
                      "pending": [], "polls": 1}
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
    # The wait loop passes the previous answer back: the poll count grows.
    assert distribute({**state, "distribution": first}, env)["polls"] == 2


def test_a_recipe_without_regions_keeps_its_home_image_only(env: StepEnv,
                                                           published: Publish) -> None:
    state = imaged(env, published())
    assert distribute(state, env) == {"images": {HOME: state["image"]["image_id"]},
                                      "ready": True, "pending": [], "polls": 1}


def test_a_copy_that_never_becomes_available_fails_after_the_last_poll(
        env: StepEnv, published: Publish) -> None:
    state = imaged(env, published(image=REGIONS))
    first = distribute(state, env)
    env.client("ec2", COPY).deregister_image(ImageId=first["images"][COPY])
    polls = state["timing"]["max_image_polls"]
    pending = distribute({**state, "distribution": first}, env)
    assert (pending["ready"], pending["pending"]) == (False, [COPY])
    with pytest.raises(BuildFailed, match=f"copies still pending after {polls} polls in: "
                                          f"{COPY}"):
        distribute({**state, "distribution": {**first, "polls": polls - 1}}, env)
