"""Recipe fields from lambda_build_ami: build.tags, build.associate_public_ip,
base.image_id and {date:STRFTIME} names - each accepted, hashed only when set, and each
hostile value refused with the exact problem."""

from __future__ import annotations

from typing import Any

import pytest

from amiforge.core.parse import recipe_from_document
from amiforge.core.tags import build_tags, builder_tags

from ..conftest import RecipeDir

PINNED = "ami-0123456789abcdef0"


def build_with(**fields: Any) -> dict[str, Any]:
    return {"platform": "linux", "user_data": "scripts/web.sh", **fields}


# --- build.tags --------------------------------------------------------------------

def test_build_tags_are_read_and_hashed(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid())
    [plain] = recipe_dir.load()
    recipe_dir.recipe(recipe_dir.valid(build=build_with(tags={"cost-center": "42"})))
    [tagged] = recipe_dir.load()
    assert tagged.build.tags == {"cost-center": "42"}
    assert plain.build.tags == {}
    assert tagged.hash != plain.hash
    # It survives publishing: the Lambdas rebuild the same recipe from its document.
    again = recipe_from_document(tagged.to_document())
    assert again.build.tags == {"cost-center": "42"} and again.hash == tagged.hash


def test_an_empty_build_tags_keeps_the_hash(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid())
    [plain] = recipe_dir.load()
    recipe_dir.recipe(recipe_dir.valid(build=build_with(tags={})))
    [empty] = recipe_dir.load()
    assert empty.hash == plain.hash


@pytest.mark.parametrize(("tags", "message"), [
    ({"amiforge:recipe": "other"},
     "tag key 'amiforge:recipe' starts with 'amiforge:', which amiforge reserves for the "
     "tags it sets itself; choose another prefix"),
    ({"AMIFORGE:Stack": "x"},
     "tag key 'AMIFORGE:Stack' starts with 'amiforge:', which amiforge reserves for the "
     "tags it sets itself; choose another prefix"),
    ({"aws:cloudformation:stack-name": "x"},
     "tag key 'aws:cloudformation:stack-name' starts with 'aws:', which AWS reserves for "
     "its own tags"),
    ({"k" * 129: "v"}, f"tag key {'k' * 129!r} must be 1-128 characters (it is 129)"),
])
def test_build_tags_refuse_reserved_and_malformed_keys(recipe_dir: RecipeDir,
                                                       tags: dict[str, str],
                                                       message: str) -> None:
    recipe_dir.recipe(recipe_dir.valid(build=build_with(tags=tags)))
    assert recipe_dir.problems() == [("web.yaml", "build.tags", message)]


def test_build_tags_refuse_non_string_values_and_too_many(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(build=build_with(tags={"n": 42})))
    [(where, field, message)] = recipe_dir.problems()
    assert (where, field) == ("web.yaml", "build.tags")
    assert message.endswith("tag keys and values must be strings: quote numbers and "
                            "true/false, like '42'")
    recipe_dir.recipe(recipe_dir.valid(build=build_with(
        tags={f"k{i}": "v" for i in range(41)})))
    assert recipe_dir.problems() == [(
        "web.yaml", "build.tags", "has 41 tags; at most 40 (EC2 allows 50 per instance and "
        "amiforge adds its own)")]


def test_amiforge_tags_win_on_the_builder() -> None:
    common = build_tags(recipe="web", build_id="web-1", recipe_hash="h" * 64,
                        base_ami=PINNED, git_commit=None, stack="amiforge")
    tags = builder_tags(common, attempt=2, user_tags={"team": "web", "Name": "web-builder"})
    assert tags["team"] == "web" and tags["Name"] == "web-builder"
    assert tags["amiforge:role"] == "builder" and tags["amiforge:attempt"] == "2"
    assert tags["amiforge:recipe"] == "web" and tags["amiforge:stack"] == "amiforge"
    assert builder_tags(common, attempt=1)["Name"] == "amiforge-builder-web"


# --- build.associate_public_ip --------------------------------------------------------

@pytest.mark.parametrize("value", [True, False])
def test_associate_public_ip_is_a_boolean_and_hashed(recipe_dir: RecipeDir,
                                                     value: bool) -> None:
    recipe_dir.recipe(recipe_dir.valid())
    [plain] = recipe_dir.load()
    recipe_dir.recipe(recipe_dir.valid(build=build_with(associate_public_ip=value)))
    [chosen] = recipe_dir.load()
    assert chosen.build.associate_public_ip is value
    assert plain.build.associate_public_ip is None
    assert chosen.hash != plain.hash
    assert recipe_from_document(chosen.to_document()).hash == chosen.hash


@pytest.mark.parametrize(("value", "shown"), [
    ("yes", "the string 'yes'"), ("true", "the string 'true'"), (1, "the number 1")])
def test_associate_public_ip_refuses_anything_but_true_or_false(recipe_dir: RecipeDir,
                                                                value: Any,
                                                                shown: str) -> None:
    recipe_dir.recipe(recipe_dir.valid(build=build_with(associate_public_ip=value)))
    [(where, field, message)] = recipe_dir.problems()
    assert (where, field) == ("web.yaml", "build.associate_public_ip")
    assert message.startswith("must be true or false (unquoted), got ")


# --- base.image_id --------------------------------------------------------------------

def test_a_pinned_base_is_its_own_query(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(base={"image_id": PINNED}))
    [recipe] = recipe_dir.load()
    assert recipe.base.image_id == PINNED
    assert recipe.base.query_key() == f"image:{PINNED}"
    assert recipe.base.label() == f"image:{PINNED}"
    assert recipe.base.to_document() == {"image_id": PINNED}
    assert recipe_from_document(recipe.to_document()).hash == recipe.hash
    with pytest.raises(ValueError, match="only a filter base"):
        recipe.base.describe_images_args()


@pytest.mark.parametrize("value", [
    "ami-123", "AMI-0123456789ABCDEF0", "ami-0123456789abcdef0 ", "i-0123456789abcdef0",
    "ami-*", "resolve:ssm:/aws/service/x", "ami-0123456789abcdefg"])
def test_a_pinned_base_must_be_an_ami_id(recipe_dir: RecipeDir, value: str) -> None:
    recipe_dir.recipe(recipe_dir.valid(base={"image_id": value}))
    assert recipe_dir.problems() == [(
        "web.yaml", "base.image_id", f"{value!r} is not an AMI id: write ami- and 8 or 17 "
        "lowercase hex digits, like ami-0123456789abcdef0")]


def test_a_pinned_base_is_the_only_base(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(base={"image_id": PINNED,
                                             "ssm_parameter": "/aws/service/x"}))
    assert recipe_dir.problems() == [(
        "web.yaml", "base", "set only one of base.ssm_parameter, base.filter and "
        "base.image_id; found base.ssm_parameter and base.image_id")]


# --- {date:STRFTIME} in image.name ----------------------------------------------------

def test_a_date_format_is_accepted_and_hashed(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(image={"name": "web-{date}"}))
    [plain] = recipe_dir.load()
    recipe_dir.recipe(recipe_dir.valid(image={"name": "web-{date:%Y%m%d}"}))
    [daily] = recipe_dir.load()
    assert daily.image.name == "web-{date:%Y%m%d}"
    assert daily.hash != plain.hash


@pytest.mark.parametrize(("template", "message"), [
    ("web-{date:%Q}",
     "the date format '%Q' uses '%Q', which may render characters AMI names do not allow "
     "(or is no strftime directive at all); use only %Y %y %m %d %H %M %S %j %I %p %G %V "
     "%u %w %U %W %b %B %a %A %f, like {date:%Y%m%d}"),
    ("web-{date:%c}",
     "the date format '%c' uses '%c', which may render characters AMI names do not allow "
     "(or is no strftime directive at all); use only %Y %y %m %d %H %M %S %j %I %p %G %V "
     "%u %w %U %W %b %B %a %A %f, like {date:%Y%m%d}"),
    ("web-{date:daily}",
     "the date format 'daily' has no strftime directive, so it is no date; write one "
     "like {date:%Y%m%d}, or plain {date}"),
    ("web-{date:}",
     "the date format '' has no strftime directive, so it is no date; write one "
     "like {date:%Y%m%d}, or plain {date}"),
    ("web-{date:%Y:%m}",
     "'web-{date:%Y:%m}' contains ':'; AMI names allow only letters, digits, spaces and "
     "( ) [ ] . / - ' @ _ besides the placeholders"),
    ("web-{recipe:%Y}",
     "unknown placeholder {recipe:%Y} in 'web-{recipe:%Y}'; use {recipe}, {date}, "
     "{short_hash}, {build_id} or {date:STRFTIME}"),
])
def test_bad_date_formats_are_refused_at_validate(recipe_dir: RecipeDir, template: str,
                                                   message: str) -> None:
    recipe_dir.recipe(recipe_dir.valid(image={"name": template}))
    assert recipe_dir.problems() == [("web.yaml", "image.name", message)]


def test_percent_signs_and_flags_are_refused(recipe_dir: RecipeDir) -> None:
    for template in ("web-{date:%Y%%}", "web-{date:%-d%m}", "web-{date:%Y%}"):
        recipe_dir.recipe(recipe_dir.valid(image={"name": template}))
        [(_, field, message)] = recipe_dir.problems()
        assert field == "image.name" and "may render characters AMI names do not allow" \
            in message, template
