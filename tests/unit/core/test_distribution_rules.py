"""Validation of where images go: per-region KMS keys for copies."""

from __future__ import annotations

from typing import Any

KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
EU_KEY = "arn:aws:kms:eu-west-1:111122223333:key/abcd1234-12ab-34cd-56ef-1234567890ab"


def test_alias_key_serves_every_copy_region(recipe_dir: Any) -> None:
    recipe_dir.recipe(recipe_dir.valid(image={"regions": ["eu-west-1"], "kms_key_id":
                                              "alias/amiforge"}))
    (recipe,) = recipe_dir.load()
    assert recipe.image.kms_key_for("eu-west-1") == "alias/amiforge"


def test_region_key_overrides_for_its_region(recipe_dir: Any) -> None:
    recipe_dir.recipe(recipe_dir.valid(image={
        "regions": ["eu-west-1"], "kms_key_id": KEY_ARN,
        "region_kms_key_ids": {"eu-west-1": EU_KEY}}))
    (recipe,) = recipe_dir.load()
    assert recipe.image.kms_key_for("eu-west-1") == EU_KEY
    assert recipe.image.kms_key_for("us-east-1") == KEY_ARN


def test_key_arn_without_a_key_for_a_copy_region_is_refused(recipe_dir: Any) -> None:
    recipe_dir.recipe(recipe_dir.valid(image={"regions": ["eu-west-1"], "kms_key_id": KEY_ARN}))
    assert recipe_dir.problems() == [(
        "web.yaml", "image.region_kms_key_ids",
        f"image.kms_key_id {KEY_ARN!r} is a key of one region, so the copy to eu-west-1 "
        "needs its own: set image.region_kms_key_ids.eu-west-1 (or use an alias that exists "
        "in every region)")]


def test_key_for_a_region_not_copied_to_is_refused(recipe_dir: Any) -> None:
    recipe_dir.recipe(recipe_dir.valid(image={"region_kms_key_ids": {"eu-west-1": EU_KEY}}))
    assert recipe_dir.problems() == [(
        "web.yaml", "image.region_kms_key_ids.eu-west-1",
        "'eu-west-1' is not in image.regions; these keys encrypt the copies made to "
        "image.regions")]


def test_unused_field_leaves_the_hash_unchanged(recipe_dir: Any) -> None:
    recipe_dir.recipe(recipe_dir.valid())
    (recipe,) = recipe_dir.load()
    assert recipe.to_document()["image"]["region_kms_key_ids"] is None
