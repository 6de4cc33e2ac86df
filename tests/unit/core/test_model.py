"""The recipe model: documents round-trip exactly; base queries; user data."""

from __future__ import annotations

import base64
import copy
import json

import pytest

from amiforge.core.model import BaseSpec, BuildSpec, ImageSpec, Recipe, RetentionSpec
from amiforge.core.parse import recipe_from_document
from amiforge.core.userdata import extract_user_script
from amiforge.errors import InvalidInput, RecipeInvalid

from ..conftest import SCRIPT, RecipeDir


@pytest.fixture
def recipe(recipe_dir: RecipeDir) -> Recipe:
    recipe_dir.recipe(recipe_dir.valid(
        base={"filter": {"owners": ["amazon", "111122223333"], "name": "al2023-ami-*",
                         "architecture": "x86_64"}},
        build={"user_data": "scripts/web.sh", "instance_types": ["t3.small", "t3a.small"],
               "retries": 2},
        image={"tags": {"team": "web"}, "regions": ["eu-west-1"],
               "share_with": ["111122223333"], "kms_key_id": "alias/amiforge"},
        retention={"keep": 3, "max_age_days": None},
    ))
    return recipe_dir.load()[0]


def test_document_is_json_safe_and_round_trips_exactly(recipe: Recipe) -> None:
    doc = json.loads(json.dumps(recipe.to_document()))
    again = recipe_from_document(doc)
    assert again.hash == recipe.hash
    assert again == recipe
    assert again.to_document() == recipe.to_document()


def test_document_carries_files_hash_and_source(recipe: Recipe) -> None:
    doc = recipe.to_document()
    assert doc["files"] == {"scripts/web.sh": base64.b64encode(SCRIPT.encode()).decode()}
    assert doc["hash"] == recipe.hash
    assert doc["source"] == recipe.source
    assert doc["format"] == 1
    assert doc["build"]["user_data"] == "scripts/web.sh"
    assert doc["build"]["script"] is None  # the script travels as a file
    assert doc["retention"] == {"keep": 3, "max_age_days": None}


def test_inline_script_round_trips(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(build={"script": "echo inline\n"}), script=None)
    recipe = recipe_dir.load()[0]
    doc = recipe.to_document()
    assert doc["files"] == {} and doc["build"]["script"] == "echo inline\n"
    assert recipe_from_document(doc) == recipe


def test_crlf_file_round_trips_with_its_raw_bytes(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(), script="echo a\r\n")
    recipe = recipe_dir.load()[0]
    again = recipe_from_document(recipe.to_document())
    assert again.files == {"scripts/web.sh": b"echo a\r\n"}
    assert again.script == "echo a\n" and again.hash == recipe.hash


def test_from_document_validates_like_a_file(recipe: Recipe) -> None:
    doc = copy.deepcopy(recipe.to_document())
    doc["build"]["retries"] = 9
    doc["files"] = {}
    with pytest.raises(RecipeInvalid) as info:
        recipe_from_document(doc)
    assert [(p.where, p.field, p.message) for p in info.value.problems] == [
        (recipe.source, "build.user_data", "file 'scripts/web.sh' is not in the document's "
         "files"),
        (recipe.source, "build.retries", "is 9; use a whole number from 0 to 5"),
    ]


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"format": 2}, "format", "document format 2 is newer than this amiforge understands (1); "
     "upgrade"),
    ({"files": {"scripts/web.sh": "%%%"}}, "files.scripts/web.sh", "is not valid base64"),
    ({"files": ["x"]}, "files", "must be a mapping of path: base64"),
    ({"colour": "blue"}, "colour", "unknown key; a recipe takes: name, description, base, "
     "build, image, retention, release, test"),
])
def test_damaged_documents_are_refused(recipe: Recipe, change: dict, field: str,
                                       message: str) -> None:
    doc = {**recipe.to_document(), **change}
    with pytest.raises(RecipeInvalid) as info:
        recipe_from_document(doc)
    assert (info.value.problems[0].field, info.value.problems[0].message) == (field, message)


def test_from_document_refuses_a_non_mapping() -> None:
    with pytest.raises(RecipeInvalid) as info:
        recipe_from_document(["not", "a", "document"])  # type: ignore[arg-type]
    assert str(info.value.problems[0]).startswith("<document>: the top level must be a mapping")


def test_hash_and_short_hash(recipe: Recipe) -> None:
    assert len(recipe.hash) == 64
    assert recipe.short_hash == recipe.hash[:12]


def test_user_data_wraps_the_script(recipe: Recipe) -> None:
    user_data = recipe.user_data()
    assert user_data.startswith("#!/bin/bash\n")
    assert recipe.hash in user_data
    assert extract_user_script(user_data) == SCRIPT


# --- base queries ----------------------------------------------------------------------

def test_filter_describe_images_args(recipe: Recipe) -> None:
    assert recipe.base.describe_images_args() == {
        "Owners": ["amazon", "111122223333"],
        "Filters": [
            {"Name": "name", "Values": ["al2023-ami-*"]},
            {"Name": "architecture", "Values": ["x86_64"]},
            {"Name": "state", "Values": ["available"]},
        ],
    }


def test_filter_without_architecture_leaves_it_out() -> None:
    base = BaseSpec(owners=("amazon",), name="x*")
    assert base.describe_images_args()["Filters"] == [
        {"Name": "name", "Values": ["x*"]}, {"Name": "state", "Values": ["available"]}]


def test_ssm_base_has_no_describe_images_args() -> None:
    with pytest.raises(ValueError, match="GetParameter"):
        BaseSpec(ssm_parameter="/p").describe_images_args()


def test_query_key_is_the_same_for_the_same_query() -> None:
    a = BaseSpec(owners=("amazon", "111122223333"), name="x*", architecture="arm64")
    b = BaseSpec(owners=("111122223333", "amazon"), name="x*", architecture="arm64")
    assert a.query_key() == b.query_key()
    assert a.query_key() != BaseSpec(owners=("amazon",), name="x*").query_key()
    assert BaseSpec(ssm_parameter="/p").query_key() == "ssm:/p"
    assert BaseSpec(ssm_parameter="/p").query_key() != BaseSpec(ssm_parameter="/q").query_key()


def test_labels() -> None:
    assert BaseSpec(ssm_parameter="/p").label() == "ssm:/p"
    assert BaseSpec(owners=("amazon",), name="x*", architecture="arm64").label() == (
        "amazon:x* (arm64)")


# --- plain data ------------------------------------------------------------------------

def test_specs_are_frozen_and_hashable(recipe: Recipe) -> None:
    with pytest.raises(AttributeError):
        recipe.name = "other"  # type: ignore[misc]
    assert hash(recipe.base) == hash(copy.deepcopy(recipe.base))
    # Equal specs hash equal, so a set (or a dict key) holds one of them.
    assert hash(recipe.image) == hash(copy.deepcopy(recipe.image))
    assert len({recipe.image, copy.deepcopy(recipe.image), recipe.build,
                copy.deepcopy(recipe.build)}) == 2


def test_spec_defaults() -> None:
    assert BuildSpec().instance_types == ("t3.small",)
    assert (BuildSpec().timeout_minutes, BuildSpec().retries) == (45, 1)
    assert ImageSpec().name == "{recipe}-{date}-{short_hash}"
    assert RetentionSpec() == RetentionSpec(keep=5, max_age_days=90)


def test_cloudformation_recipe_has_a_template_and_no_user_data() -> None:
    recipe = Recipe(name="cfn", description=None, base=BaseSpec(ssm_parameter="/p"),
                    build=BuildSpec(cloudformation="stack.yaml"), image=ImageSpec(),
                    retention=RetentionSpec(), script="", files={"stack.yaml": b"{}"},
                    source="cfn.yaml")
    assert recipe.builder == "cloudformation"
    assert recipe.cloudformation_template() == "{}"
    with pytest.raises(InvalidInput) as info:
        recipe.user_data()
    assert str(info.value) == (
        "cfn.yaml: build.cloudformation: recipe 'cfn' builds from a CloudFormation template, "
        "which configures the instance itself: it has no user data for amiforge to wrap")
