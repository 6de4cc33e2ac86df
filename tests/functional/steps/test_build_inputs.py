"""What every step reads from the execution state (``steps/build_inputs.py``), on the local
cloud's recipe store: the exact recipe version the build started with (not the current
one), and the build's tags with the stack's name, without which nothing is created."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from tests.helpers import Publish, publish_recipe, resolved, write_recipe

from amiforge.core.tags import BASE_AMI, BUILD_ID, RECIPE, RECIPE_HASH, STACK
from amiforge.errors import NotFound, OperationFailed
from amiforge.steps.build_inputs import common_tags, load_recipe
from amiforge.steps.env import StepEnv


def test_a_build_keeps_the_version_it_started_with(env: StepEnv, published: Publish,
                                                   recipe_dir: Path) -> None:
    first = published()
    build = resolved(env, first)["build"]
    second = write_recipe(recipe_dir / "v2", first.name, "echo changed\n")
    publish_recipe(env, second)

    assert load_recipe(env, build).hash == first.hash != second.hash
    assert load_recipe(env, build).user_data() == first.user_data()


def test_a_version_missing_from_the_store_is_not_found(env: StepEnv,
                                                       published: Publish) -> None:
    build = {**resolved(env, published())["build"], "recipe_hash": "cd" * 32}
    with pytest.raises(NotFound, match=r"version cdcdcdcdcdcd is not in the recipe store"):
        load_recipe(env, build)


def test_tags_name_the_build_and_the_stack(env: StepEnv, published: Publish) -> None:
    build = resolved(env, published())["build"]
    tags = common_tags(build, env)
    assert {k: tags[k] for k in (RECIPE, BUILD_ID, RECIPE_HASH, BASE_AMI, STACK)} == {
        RECIPE: build["recipe"], BUILD_ID: build["build_id"],
        RECIPE_HASH: build["recipe_hash"], BASE_AMI: build["base_ami"],
        STACK: env.stack_name}
    with pytest.raises(OperationFailed, match="AMIFORGE_STACK_NAME is not set"):
        common_tags(build, dataclasses.replace(env, stack_name=""))
