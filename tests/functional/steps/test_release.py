"""Re-release (``steps/release.py``) on the local cloud: publishing content built before
on the same base brings that build's image back as the recipe's newest without a build:
its record moves to the front of the ``available`` index (``built_at`` keeps when it was
built), ``latest`` names it in every region, and the build key is claimed once. A
pruned build, or one whose image is gone, is not released."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers import (
    COPY,
    HOME,
    build_id_of,
    iso,
    latest_value,
    publish_recipe,
    seed,
    tagged_image,
    write_recipe,
)

from amiforge.core.model import Recipe
from amiforge.steps.env import StepEnv
from amiforge.steps.release import release_candidate, rerelease


def built(env: StepEnv, recipe: Recipe, days_old: float, key: str,
          **fields: Any) -> dict[str, Any]:
    build_id = build_id_of(recipe.name)
    home, _ = tagged_image(env, recipe.name, build_id)
    copy, _ = tagged_image(env, recipe.name, build_id, COPY)
    record = {"recipe": recipe.name, "build_id": build_id, "status": "AVAILABLE",
              "build_key": key, "image_id": home, "images": {HOME: home, COPY: copy},
              "created_at": iso(days_old), **fields}
    seed(env, record)
    return env.catalog.get(recipe.name, build_id) or {}


def test_an_earlier_build_becomes_the_newest_again_and_the_key_is_claimed_once(
        env: StepEnv, recipe_dir: Path) -> None:
    recipe = write_recipe(recipe_dir, "rerel-" + build_id_of("x")[-8:])
    publish_recipe(env, recipe)
    key = f"{recipe.name}-{'1' * 20}"
    earlier = built(env, recipe, 10, key)
    later = built(env, recipe, 1, f"{recipe.name}-{'2' * 20}")  # other content, newer
    assert env.catalog.latest(recipe.name)["build_id"] == later["build_id"]

    claimed = rerelease(env, recipe, key, "ami-0123456789abcdef0", earlier, "publish")

    assert claimed is True
    record = env.catalog.get(recipe.name, earlier["build_id"])
    assert record["built_at"] == earlier["created_at"] < record["created_at"]
    assert record["release_trigger"] == "publish"
    assert env.catalog.latest(recipe.name)["build_id"] == earlier["build_id"]
    assert latest_value(env, recipe.name) == earlier["images"][HOME]
    assert latest_value(env, recipe.name, COPY) == earlier["images"][COPY]
    current = env.store.current(recipe.name)
    assert (current["last_build_key"], current["last_build_id"]) == (key,
                                                                     earlier["build_id"])
    # A second detection releasing the same key again does not win the claim.
    again = env.catalog.get(recipe.name, earlier["build_id"]) or {}
    assert rerelease(env, recipe, key, "ami-0123456789abcdef0", again, "schedule") is False
    assert env.catalog.get(recipe.name, earlier["build_id"])["built_at"] == \
        earlier["created_at"]  # the original build time survives a second release


def test_a_pruned_build_is_not_released(env: StepEnv, recipe_dir: Path) -> None:
    recipe = write_recipe(recipe_dir, "pruned-" + build_id_of("x")[-8:])
    publish_recipe(env, recipe)
    key = f"{recipe.name}-{'3' * 20}"
    read = built(env, recipe, 10, key)
    env.catalog.update(recipe.name, read["build_id"], status="PRUNED")  # retention, meanwhile

    assert rerelease(env, recipe, key, "ami-0123456789abcdef0", read, "publish") is None
    assert latest_value(env, recipe.name) is None
    assert "last_build_key" not in env.store.current(recipe.name)


def test_the_candidate_is_the_newest_available_build_whose_image_still_exists(
        env: StepEnv, recipe_dir: Path) -> None:
    recipe = write_recipe(recipe_dir, "cand-" + build_id_of("x")[-8:])
    key = f"{recipe.name}-{'4' * 20}"
    oldest = built(env, recipe, 30, key)
    middle = built(env, recipe, 20, key)
    newest_gone = built(env, recipe, 10, key)
    failed = {**built(env, recipe, 5, key), "status": "FAILED"}
    env.client("ec2").deregister_image(ImageId=newest_gone["image_id"])

    chosen = release_candidate(env, [oldest, failed, newest_gone, middle])
    assert chosen is not None and chosen["build_id"] == middle["build_id"]
    env.client("ec2").deregister_image(ImageId=middle["image_id"])
    env.client("ec2").deregister_image(ImageId=oldest["image_id"])
    assert release_candidate(env, [oldest, middle, newest_gone]) is None
