"""The recipe's ``test:`` section: parsed like every other section (every problem with its
file, field and value), published and rebuilt identically, and part of the recipe hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from amiforge.core.parse import recipe_from_document
from amiforge.core.sweep_judge import recipe_budget_minutes
from amiforge.core.test_spec import DEFAULT_TEST_TIMEOUT_MINUTES, TestSpec
from amiforge.core.userdata import extract_user_script, parse_console

from ..conftest import RecipeDir

TEST_SCRIPT = "#!/bin/bash\ncurl -fsS http://localhost/ | grep -q Welcome\n"
OUTSIDE = ("resolves (after following symlinks) outside the recipe directory {root}; a "
           "recipe may only use files inside its own directory: copy the file there")


def with_test(recipe_dir: RecipeDir, test: object, *, build: dict | None = None,
              script: str | None = TEST_SCRIPT) -> None:
    if script is not None:
        recipe_dir.write("scripts/web-test.sh", script)
    doc = recipe_dir.valid(**({"build": build} if build else {}))
    doc["test"] = test
    recipe_dir.recipe(doc)


# --- what a valid test section becomes -------------------------------------------------

def test_a_test_file_is_read_with_defaults(recipe_dir: RecipeDir) -> None:
    with_test(recipe_dir, {"user_data": "scripts/web-test.sh"})
    [recipe] = recipe_dir.load()
    assert recipe.test == TestSpec(script=TEST_SCRIPT, user_data_file="scripts/web-test.sh",
                                   instance_types=(),
                                   timeout_minutes=DEFAULT_TEST_TIMEOUT_MINUTES)
    assert recipe.files["scripts/web-test.sh"] == TEST_SCRIPT.encode()
    # Defaults to the build's instance types.
    assert recipe.test.types_or(recipe.build.instance_types) == ("t3.small",)


def test_an_inline_test_with_its_own_types_and_timeout(recipe_dir: RecipeDir) -> None:
    with_test(recipe_dir, {"script": "systemctl is-active nginx\n",
                           "instance_types": ["t3.micro"], "timeout_minutes": 30}, script=None)
    [recipe] = recipe_dir.load()
    assert recipe.test is not None
    assert recipe.test.script == "systemctl is-active nginx\n"
    assert recipe.test.types_or(recipe.build.instance_types) == ("t3.micro",)
    assert recipe.test.timeout_minutes == 30


def test_the_test_runs_in_the_builders_wrapper_linux_and_windows(recipe_dir: RecipeDir) -> None:
    with_test(recipe_dir, {"user_data": "scripts/web-test.sh"})
    [recipe] = recipe_dir.load()
    wrapped = recipe.test_user_data()
    assert extract_user_script(wrapped) == TEST_SCRIPT
    assert "AMIFORGE-RESULT" in wrapped
    assert recipe.user_data() != wrapped


def test_a_windows_test_gets_the_windows_wrapper(recipe_dir: RecipeDir) -> None:
    with_test(recipe_dir, {"script": "Invoke-WebRequest http://localhost -UseBasicParsing"},
              build={"platform": "windows", "script": "Install-WindowsFeature Web-Server"},
              script=None)
    [recipe] = recipe_dir.load()
    wrapped = recipe.test_user_data()
    assert wrapped.lstrip().lower().startswith("<powershell>")
    assert "Invoke-WebRequest" in wrapped and "AMIFORGE-RESULT" in wrapped
    assert parse_console("AMIFORGE-RESULT: success\n").outcome == "success"


def test_a_published_recipe_keeps_its_test(recipe_dir: RecipeDir) -> None:
    with_test(recipe_dir, {"user_data": "scripts/web-test.sh", "timeout_minutes": 20})
    [recipe] = recipe_dir.load()
    again = recipe_from_document(recipe.to_document())
    assert again.test == recipe.test
    assert again.hash == recipe.hash


# --- the hash ----------------------------------------------------------------------------

def test_the_test_script_is_part_of_the_hash(recipe_dir: RecipeDir, tmp_path: Path) -> None:
    recipe_dir.recipe(recipe_dir.valid())
    [untested] = recipe_dir.load()
    with_test(recipe_dir, {"user_data": "scripts/web-test.sh"})
    [tested] = recipe_dir.load()
    recipe_dir.write("scripts/web-test.sh", TEST_SCRIPT + "test -f /etc/nginx/nginx.conf\n")
    [changed] = recipe_dir.load()
    assert len({untested.hash, tested.hash, changed.hash}) == 3


def test_an_inline_test_and_its_timeout_are_hashed(recipe_dir: RecipeDir) -> None:
    hashes = set()
    for test in ({"script": "true\n"}, {"script": "false\n"},
                 {"script": "true\n", "timeout_minutes": 30}):
        with_test(recipe_dir, test, script=None)
        [recipe] = recipe_dir.load()
        hashes.add(recipe.hash)
    assert len(hashes) == 3


def test_a_recipe_without_a_test_keeps_its_hash(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid())
    [recipe] = recipe_dir.load()
    assert recipe.test is None
    assert "test" not in {k for k, v in recipe.spec_document().items() if v is not None}


def test_the_sweepers_budget_covers_the_test(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid())
    [untested] = recipe_dir.load()
    with_test(recipe_dir, {"script": "true\n", "timeout_minutes": 60}, script=None)
    [tested] = recipe_dir.load()
    assert (recipe_budget_minutes(tested, image_timeout_minutes=60)
            >= recipe_budget_minutes(untested, image_timeout_minutes=60) + 60)


# --- refusals: each with its file, field and value ---------------------------------------

def test_a_test_file_outside_the_recipe_directory_is_refused(recipe_dir: RecipeDir) -> None:
    with_test(recipe_dir, {"user_data": "../../../etc/passwd"}, script=None)
    assert recipe_dir.problems() == [
        ("web.yaml", "test.user_data",
         "../../../etc/passwd " + OUTSIDE.format(root=recipe_dir.root))]


def test_an_absolute_test_path_is_refused(recipe_dir: RecipeDir) -> None:
    with_test(recipe_dir, {"user_data": "/etc/passwd"}, script=None)
    assert recipe_dir.problems() == [
        ("web.yaml", "test.user_data", "'/etc/passwd' is an absolute path; write it relative "
         "to the recipe file (like scripts/web-test.sh)")]


@pytest.mark.parametrize(("timeout", "message"), [
    (10_000, "is 10000; use a whole number from 1 to 180"),
    (0, "is 0; use a whole number from 1 to 180"),
    (-5, "is -5; use a whole number from 1 to 180"),
    ("15", "must be a whole number, got '15'"),
    (True, "must be a whole number, got true"),
])
def test_hostile_timeouts_are_refused(recipe_dir: RecipeDir, timeout: object,
                                      message: str) -> None:
    with_test(recipe_dir, {"script": "true\n", "timeout_minutes": timeout}, script=None)
    assert recipe_dir.problems() == [("web.yaml", "test.timeout_minutes", message)]


def test_unknown_keys_are_refused_with_a_suggestion(recipe_dir: RecipeDir) -> None:
    with_test(recipe_dir, {"script": "true\n", "timeout_minute": 5, "run_as": "root"},
              script=None)
    assert recipe_dir.problems() == [
        ("web.yaml", "test.timeout_minute", "unknown key; did you mean 'timeout_minutes'?"),
        ("web.yaml", "test.run_as", "unknown key; test takes: user_data, script, "
         "instance_types, timeout_minutes")]


def test_a_test_needs_exactly_one_script(recipe_dir: RecipeDir) -> None:
    with_test(recipe_dir, {"timeout_minutes": 5}, script=None)
    assert recipe_dir.problems() == [
        ("web.yaml", "test", "no script: set test.user_data to a script file beside the "
         "recipe (like scripts/web-test.sh) or test.script to the script text")]
    with_test(recipe_dir, {"script": "true", "user_data": "scripts/web-test.sh"})
    assert recipe_dir.problems() == [
        ("web.yaml", "test", "set only one of test.user_data and test.script, not both")]


def test_an_empty_test_and_bad_types_are_refused(recipe_dir: RecipeDir) -> None:
    with_test(recipe_dir, {"script": "   \n", "instance_types": []}, script=None)
    problems = recipe_dir.problems()
    assert ("web.yaml", "test.script", "is empty: a test must check something; write the "
            "commands that fail when the image is bad") in problems
    assert ("web.yaml", "test.instance_types", "is empty; list at least one instance type, "
            "or leave it out to test on the build's") in problems


def test_a_test_that_is_not_a_mapping_is_refused(recipe_dir: RecipeDir) -> None:
    with_test(recipe_dir, "scripts/web-test.sh")
    [(where, field, message)] = recipe_dir.problems()
    assert (where, field) == ("web.yaml", "test")
    assert "mapping" in message


def test_a_bad_instance_type_names_the_value(recipe_dir: RecipeDir) -> None:
    with_test(recipe_dir, {"script": "true", "instance_types": ["t3.small; rm -rf /"]},
              script=None)
    [(where, field, message)] = recipe_dir.problems()
    assert where == "web.yaml" and field.startswith("test.instance_types")
    assert "t3.small; rm -rf /" in message
