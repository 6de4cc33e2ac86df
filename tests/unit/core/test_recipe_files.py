"""Files a recipe reads are untrusted: inside the recipe directory, regular, bounded.

Each refusal asserts the file and field it names. FIFOs are real FIFOs (a read of one
would block the test forever, so a hang fails the run instead of passing it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from amiforge.core.files import READ_LIMIT, UnsafeFile, read_bounded
from amiforge.core.yamlsafe import MAX_DEPTH

from ..conftest import RecipeDir

OUTSIDE = ("resolves (after following symlinks) outside the recipe directory {root}; a "
           "recipe may only use files inside its own directory: copy the file there")
NOT_REGULAR = "not a regular file; name an ordinary file inside the recipe directory"


def test_parent_path_escape_is_refused(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(build={"user_data": "../../../etc/passwd"}))
    assert recipe_dir.problems() == [
        ("web.yaml", "build.user_data",
         "../../../etc/passwd " + OUTSIDE.format(root=recipe_dir.root))]


def test_symlink_to_a_file_outside_is_refused(recipe_dir: RecipeDir, tmp_path: Path) -> None:
    secret = tmp_path.parent / f"{tmp_path.name}-secret.txt"
    secret.write_text("aws_secret_access_key=x\n")
    recipe_dir.recipe(recipe_dir.valid(), script=None)
    (recipe_dir.root / "scripts").mkdir()
    (recipe_dir.root / "scripts" / "web.sh").symlink_to(secret)
    assert recipe_dir.problems() == [
        ("web.yaml", "build.user_data", "scripts/web.sh " + OUTSIDE.format(root=recipe_dir.root))]


def test_symlink_inside_the_directory_is_followed(recipe_dir: RecipeDir) -> None:
    recipe_dir.write("scripts/real.sh", "echo real\n")
    recipe_dir.recipe(recipe_dir.valid(), script=None)
    (recipe_dir.root / "scripts" / "web.sh").symlink_to("real.sh")
    [recipe] = recipe_dir.load()
    assert recipe.files == {"scripts/web.sh": b"echo real\n"}


def test_build_template_outside_is_refused(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(build={"cloudformation": "../stack.yaml"}))
    assert recipe_dir.problems() == [
        ("web.yaml", "build.cloudformation",
         "../stack.yaml " + OUTSIDE.format(root=recipe_dir.root))]


def test_fifo_script_is_refused_without_blocking(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(), script=None)
    (recipe_dir.root / "scripts").mkdir()
    os.mkfifo(recipe_dir.root / "scripts" / "web.sh")
    assert recipe_dir.problems() == [
        ("web.yaml", "build.user_data",
         f"{recipe_dir.root / 'scripts' / 'web.sh'} is a FIFO (named pipe), {NOT_REGULAR}")]


def test_fifo_recipe_file_is_refused_without_blocking(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid())
    os.mkfifo(recipe_dir.root / "other.yaml")
    assert recipe_dir.problems() == [("other.yaml", None, f"is a FIFO (named pipe), {NOT_REGULAR}")]


def test_device_is_refused_before_it_is_read(tmp_path: Path) -> None:
    # /dev/zero would read forever; the stat says "device" before any open.
    with pytest.raises(UnsafeFile) as info:
        read_bounded(Path("/dev"), "zero")
    assert info.value.reason == f"is a device, {NOT_REGULAR}"


def test_recipe_file_symlinked_out_of_the_directory_is_refused(recipe_dir: RecipeDir,
                                                              tmp_path: Path) -> None:
    recipe_dir.recipe(recipe_dir.valid())
    outside = tmp_path.parent / f"{tmp_path.name}-other.yaml"
    outside.write_text("name: other\n")
    (recipe_dir.root / "other.yaml").symlink_to(outside)
    assert recipe_dir.problems() == [
        ("other.yaml", None, OUTSIDE.format(root=recipe_dir.root))]


def test_oversized_script_is_refused_by_size_without_reading_it(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(), script=None)
    big = recipe_dir.write("scripts/web.sh", b"")
    with big.open("wb") as sparse:  # a sparse file: its size says it all
        sparse.truncate(READ_LIMIT + 1)
    assert recipe_dir.problems() == [
        ("web.yaml", "build.user_data",
         f"{big} is {READ_LIMIT + 1} bytes, over the {READ_LIMIT}-byte limit on files a "
         "recipe reads; keep scripts and templates small and fetch bulk content at build "
         "time")]


def test_read_bound_holds_for_a_file_at_the_limit(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 10)
    assert read_bounded(tmp_path, "f", limit=10) == b"x" * 10
    with pytest.raises(UnsafeFile) as info:
        read_bounded(tmp_path, "f", limit=9)
    assert info.value.reason.startswith("is 10 bytes, over the 9-byte limit")


def test_deeply_nested_yaml_is_refused_not_a_recursion_error(recipe_dir: RecipeDir) -> None:
    recipe_dir.write("web.yaml", "name: " + "[" * 5000 + "]" * 5000 + "\n")
    assert recipe_dir.problems() == [
        ("web.yaml", None,
         f"is not valid YAML: it nests more than {MAX_DEPTH} levels deep; nest less")]


def test_deeply_nested_build_template_is_refused(recipe_dir: RecipeDir) -> None:
    recipe_dir.write("stack.yaml", "Resources: " + "[" * 1000 + "]" * 1000 + "\n")
    recipe_dir.recipe(recipe_dir.valid(build={"cloudformation": "stack.yaml"}))
    assert ("web.yaml", "build.cloudformation",
            f"stack.yaml is not a valid YAML or JSON template: it nests more than {MAX_DEPTH} "
            "levels deep; nest less") in recipe_dir.problems()


def test_a_nul_or_control_character_in_a_path_is_refused(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(build={"user_data": "scripts/web\x00.sh"}))
    assert recipe_dir.problems() == [
        ("web.yaml", "build.user_data", "the path contains the control character '\\x00' at "
         "position 12; name the file with a plain path, like scripts/web.sh")]


def test_an_overlong_path_is_refused_without_echoing_it(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(build={"user_data": "a/" * 3000 + "web.sh"}))
    assert recipe_dir.problems() == [
        ("web.yaml", "build.user_data", "is 6006 characters; at most 1024 are allowed")]


def test_read_bounded_refuses_a_nul_even_unparsed(tmp_path: Path) -> None:
    with pytest.raises(UnsafeFile) as info:
        read_bounded(tmp_path, "a\x00b")
    assert info.value.reason == "contains a NUL character"
