"""CreateImage on the local cloud: the image of the stopped builder is named and tagged at
creation (the recipe's tags cannot replace amiforge's), and a retried CreateImage finds
the image the first call made. Waiting for it: test_image_wait.py."""

from __future__ import annotations

import re

import pytest
from tests.helpers import Publish, stopped

from amiforge.core.tags import BUILD_ID, RECIPE, RECIPE_HASH, STACK
from amiforge.errors import BuildFailed
from amiforge.localcloud.testing import images_of_build
from amiforge.steps.env import StepEnv
from amiforge.steps.image import create_image


def test_the_image_is_named_tagged_at_creation_and_recorded(env: StepEnv,
                                                            published: Publish) -> None:
    recipe = published(image="tags: {team: web}\n")
    state = stopped(env, recipe)
    build = state["build"]

    made = create_image(state, env)

    (image,) = images_of_build(env.client("ec2"), build["build_id"])
    assert image["ImageId"] == made["image_id"] and made["polls"] == 0
    assert made["name"].startswith(f"{recipe.name}-") and made["name"] == image["Name"]
    assert made["name"].endswith(recipe.short_hash)
    assert image["SourceInstanceId"] == state["launch"]["instance_id"]
    tags = {t["Key"]: t["Value"] for t in image["Tags"]}
    assert {k: tags[k] for k in (BUILD_ID, RECIPE, RECIPE_HASH, STACK, "team")} == {
        BUILD_ID: build["build_id"], RECIPE: recipe.name, RECIPE_HASH: recipe.hash,
        STACK: env.stack_name, "team": "web"}
    record = env.catalog.get(recipe.name, build["build_id"])
    assert (record["image_id"], record["image_name"]) == (made["image_id"], made["name"])


def test_a_retried_create_image_makes_no_second_image(env: StepEnv,
                                                      published: Publish) -> None:
    state = stopped(env, published())
    first = create_image(state, env)
    assert create_image(state, env)["image_id"] == first["image_id"]
    assert len(images_of_build(env.client("ec2"), state["build"]["build_id"])) == 1


def test_a_date_format_names_the_image_by_day(env: StepEnv, published: Publish) -> None:
    recipe = published(image="name: '{recipe}-{date:%Y%m%d}'\n")
    state = stopped(env, recipe)
    made = create_image(state, env)
    assert re.fullmatch(rf"{recipe.name}-20\d{{6}}", made["name"]), made["name"]
    (image,) = images_of_build(env.client("ec2"), state["build"]["build_id"])
    assert image["Name"] == made["name"]


def test_a_name_already_taken_fails_the_build_before_create_image(
        env: StepEnv, published: Publish) -> None:
    recipe = published(image="name: '{recipe}-{date:%Y%m%d}'\n")
    first = create_image(stopped(env, recipe), env)
    second = stopped(env, recipe)  # another build of the recipe, the same day

    with pytest.raises(BuildFailed) as info:
        create_image(second, env)

    assert str(info.value) == (
        f"image name {first['name']!r} is already taken by {first['image_id']} in "
        f"{env.region} (AMI names are unique per account and region) (add {{build_id}}, "
        "or a finer {date:...} format, to image.name)")
    assert images_of_build(env.client("ec2"), second["build"]["build_id"]) == []
