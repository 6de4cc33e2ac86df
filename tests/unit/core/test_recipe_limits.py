"""What AWS would refuse (or store and then choke on) is refused by validate, by field."""

from __future__ import annotations

import pytest

from ..conftest import RecipeDir

CONTROL = ("contains the control character {char!r} at position {at}; AWS refuses control "
           "characters (newlines and tabs too): write it on one line of plain text")
EMPTY = ("is empty: the build would change nothing in the base image; write the commands "
         "that configure it")


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\n", "\t", "\x7f", "\x85"])
def test_control_characters_in_descriptions_are_refused(recipe_dir: RecipeDir,
                                                        char: str) -> None:
    recipe_dir.recipe(recipe_dir.valid(description=f"ab{char}c",
                                       image={"description": f"x{char}"}))
    assert recipe_dir.problems() == [
        ("web.yaml", "description", CONTROL.format(char=char, at=3)),
        ("web.yaml", "image.description", CONTROL.format(char=char, at=2))]


def test_control_characters_in_tags_are_refused(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(image={"tags": {"team": "w\x07b", "o\x01k": "v"}}))
    assert recipe_dir.problems() == [
        ("web.yaml", "image.tags", "tag 'team': its value " + CONTROL.format(char="\x07", at=2)),
        ("web.yaml", "image.tags", "tag 'o\\x01k': its key " + CONTROL.format(char="\x01", at=2))]


def test_control_characters_in_the_recipe_name_are_refused(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(name="web\x00"))
    [(where, field, message)] = recipe_dir.problems()
    assert (where, field) == ("web.yaml", "name")
    assert message.startswith("'web\\x00' is not a valid recipe name")


@pytest.mark.parametrize("glob", ["", "   "])
def test_empty_filter_name_is_refused(recipe_dir: RecipeDir, glob: str) -> None:
    recipe_dir.recipe(recipe_dir.valid(base={"filter": {"owners": ["amazon"], "name": glob}}))
    assert recipe_dir.problems() == [
        ("web.yaml", "base.filter.name", "is empty; give the base image's name or a glob of "
         "it, like 'al2023-ami-2023.*-x86_64'")]


@pytest.mark.parametrize("script", ["", " \n\t\n"])
def test_empty_inline_script_is_refused(recipe_dir: RecipeDir, script: str) -> None:
    recipe_dir.recipe(recipe_dir.valid(build={"script": script}))
    assert recipe_dir.problems() == [("web.yaml", "build.script", EMPTY)]


def test_empty_script_file_is_refused(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(), script="\n\n")
    assert recipe_dir.problems() == [("web.yaml", "build.user_data", f"scripts/web.sh {EMPTY}")]


def test_nul_in_an_inline_script_is_refused(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(build={"script": "echo a\x00b\n"}))
    assert recipe_dir.problems() == [
        ("web.yaml", "build.script", "contains a NUL character; a script must be text")]


def test_more_than_five_security_groups_are_refused(recipe_dir: RecipeDir) -> None:
    groups = [f"sg-0000000{i}" for i in range(6)]
    recipe_dir.recipe(recipe_dir.valid(build={"script": "echo", "security_group_ids": groups}))
    assert recipe_dir.problems() == [
        ("web.yaml", "build.security_group_ids", "lists 6 groups; EC2 attaches at most 5 to "
         "an instance's network interface: merge their rules into fewer groups")]


def test_five_security_groups_are_fine(recipe_dir: RecipeDir) -> None:
    groups = [f"sg-0000000{i}" for i in range(5)]
    recipe_dir.recipe(recipe_dir.valid(build={"script": "echo", "security_group_ids": groups}))
    assert len(recipe_dir.load()[0].build.security_group_ids) == 5


def test_a_region_shaped_name_that_is_no_region_is_refused(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(image={"regions": ["eu-west-1", "zz-fake-9"]}))
    assert recipe_dir.problems() == [
        ("web.yaml", "image.regions[1]", "'zz-fake-9' is not an AWS region: expected a region "
         "name like eu-west-1 (see `aws ec2 describe-regions --all-regions`)")]
