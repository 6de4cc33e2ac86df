"""publish is all or nothing: every recipe is checked, and sized, before the first write."""

from __future__ import annotations

import dataclasses

from amiforge.core.recipes import ITEM_LIMIT, publish_problems, stored_size

from ..conftest import RecipeDir


def test_items_over_dynamodbs_limit_are_named_before_anything_is_stored(
        recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid())
    [small] = recipe_dir.load()
    # A file set no validated recipe reaches today: the size check is the last guard.
    big = dataclasses.replace(small, name="big", source="big.yaml",
                              files={"scripts/web.sh": b"x" * 320_000})
    assert stored_size(small) < 10_000
    assert stored_size(big) > ITEM_LIMIT
    problems = publish_problems([small, big], ())
    assert [(p.where, p.field) for p in problems] == [("big.yaml", "build.user_data")]
    assert problems[0].message == (
        f"the published recipe would be {stored_size(big)} bytes, over DynamoDB's item limit "
        f"of {ITEM_LIMIT} bytes (the files it references are stored in it, base64): make "
        "them smaller")


def test_every_recipe_is_checked_not_only_the_first(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(name="a", base={"ssm_parameter": "/x/a"}), "a.yaml")
    recipe_dir.recipe(recipe_dir.valid(name="b"), "b.yaml")
    recipe_dir.recipe(recipe_dir.valid(name="c", base={"ssm_parameter": "/y/c"}), "c.yaml")
    problems = publish_problems(recipe_dir.load(), ("/x/",))
    assert [(recipe_dir.rel(p.where), p.field) for p in problems] == [
        ("c.yaml", "base.ssm_parameter")]
