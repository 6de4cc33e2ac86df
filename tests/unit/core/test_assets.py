"""build.files and build.instance_profile (core/assets.py): files are hashed into the
recipe (a one-byte change rebuilds), survive publishing as a manifest, and every hostile
directory - traversal, a symlink out, a FIFO, a huge file, a missing directory - is
refused with a problem naming the field and the value."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from amiforge.core import assets
from amiforge.core.assets import Asset, builder_manifest, check_instance_profile, object_key
from amiforge.core.parse import recipe_from_document
from amiforge.core.plan import document_changes
from amiforge.core.userdata import wrap
from amiforge.errors import RecipeInvalid

from ..conftest import RecipeDir


def build_with(**fields: Any) -> dict[str, Any]:
    return {"platform": "linux", "user_data": "scripts/web.sh", **fields}


def with_files(recipe_dir: RecipeDir, *dirs: str) -> None:
    recipe_dir.recipe(recipe_dir.valid(build=build_with(files=list(dirs))))


def test_files_are_listed_hashed_and_part_of_the_recipe_hash(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid())
    [plain] = recipe_dir.load()
    recipe_dir.write("files/motd", "hello\n")
    recipe_dir.write("files/etc/app.conf", b"\x00binary")
    with_files(recipe_dir, "files")
    [recipe] = recipe_dir.load()
    assert recipe.build.files == ("files",)
    assert recipe.assets == (
        Asset("files/etc/app.conf", hashlib.sha256(b"\x00binary").hexdigest(), 7),
        Asset("files/motd", hashlib.sha256(b"hello\n").hexdigest(), 6))
    assert recipe.hash != plain.hash
    # One changed byte in one file: another hash, so detection builds it again.
    recipe_dir.write("files/motd", "hellO\n")
    [changed] = recipe_dir.load()
    assert changed.hash != recipe.hash
    # Publishing carries the manifest, not the bytes; the stack gets the same hash.
    document = changed.to_document()
    assert "files/motd" not in document["files"]
    again = recipe_from_document(document)
    assert again.hash == changed.hash and again.assets == changed.assets
    # `plan` names the file that changed.
    assert document_changes(recipe.to_document(), document) == ("files/motd",)


def test_a_recipe_without_files_keeps_its_hash(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid())
    [plain] = recipe_dir.load()
    assert plain.to_document()["assets"] is None
    assert "files" not in plain.to_document()["build"] or plain.to_document()["build"][
        "files"] is None


@pytest.mark.parametrize(("value", "message"), [
    ("../outside", "'../outside' leaves the recipe directory ('..'); a recipe may only ship "
                   "files from inside its own directory"),
    ("/etc", "'/etc' is an absolute path; write it relative to the recipe file (like files) "
             "so the recipe hashes the same anywhere"),
    (".", "'.' is the recipe directory itself; name a subdirectory beside the recipe (like "
          "files) that holds only what the build needs"),
])
def test_hostile_directory_names_are_refused(recipe_dir: RecipeDir, value: str,
                                             message: str) -> None:
    with_files(recipe_dir, value)
    [(where, field, got)] = recipe_dir.problems()
    assert (where, field, got) == ("web.yaml", "build.files[0]", message)


def test_a_missing_directory_is_named(recipe_dir: RecipeDir) -> None:
    with_files(recipe_dir, "nowhere")
    [(_, field, message)] = recipe_dir.problems()
    assert field == "build.files"
    assert message == (f"'nowhere': no such directory: looked for {recipe_dir.root}/nowhere; "
                       "create it beside the recipe or fix the path")


def test_a_file_instead_of_a_directory_is_refused(recipe_dir: RecipeDir) -> None:
    recipe_dir.write("files", "not a dir")
    with_files(recipe_dir, "files")
    [(_, field, message)] = recipe_dir.problems()
    assert field == "build.files"
    assert "is not a directory; build.files lists directories" in message


def test_a_symlinked_directory_out_is_refused(recipe_dir: RecipeDir, tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-secrets"
    outside.mkdir()
    (outside / "id_rsa").write_text("secret")
    recipe_dir.root.joinpath("files").symlink_to(outside)
    with_files(recipe_dir, "files")
    [(_, field, message)] = recipe_dir.problems()
    assert field == "build.files"
    assert message.startswith("'files': resolves (after following symlinks) outside the "
                              "recipe directory")


def test_a_symlink_out_inside_the_directory_is_refused(recipe_dir: RecipeDir,
                                                       tmp_path: Path) -> None:
    secret = tmp_path.parent / f"{tmp_path.name}-credentials"
    secret.write_text("aws_secret_access_key = x")
    recipe_dir.write("files/ok", "fine")
    recipe_dir.root.joinpath("files/creds").symlink_to(secret)
    with_files(recipe_dir, "files")
    [(_, field, message)] = recipe_dir.problems()
    assert field == "build.files"
    assert message == (f"'files': files/creds is a symlink that resolves outside the recipe "
                       f"directory {recipe_dir.root}; copy the file in instead")


def test_a_symlinked_subdirectory_is_refused(recipe_dir: RecipeDir) -> None:
    recipe_dir.write("files/a/x", "x")
    recipe_dir.root.joinpath("files/loop").symlink_to(recipe_dir.root / "files")
    with_files(recipe_dir, "files")
    [(_, _, message)] = recipe_dir.problems()
    assert "files/loop is a symlink to a directory; copy the directory in instead" in message


def test_a_fifo_is_refused_without_blocking(recipe_dir: RecipeDir) -> None:
    recipe_dir.write("files/ok", "fine")
    os.mkfifo(recipe_dir.root / "files" / "pipe")
    with_files(recipe_dir, "files")
    [(_, _, message)] = recipe_dir.problems()
    assert "files/pipe is not a regular file (a FIFO, device or socket)" in message


def test_a_huge_file_is_refused_before_it_is_read(recipe_dir: RecipeDir) -> None:
    big = recipe_dir.write("files/disk.img", b"")
    os.truncate(big, assets.MAX_FILE_BYTES + 1)  # sparse: the size is all that is checked
    with_files(recipe_dir, "files")
    [(_, field, message)] = recipe_dir.problems()
    assert field == "build.files"
    assert message == (f"'files': files/disk.img is {assets.MAX_FILE_BYTES + 1} bytes, over "
                       f"the {assets.MAX_FILE_BYTES}-byte limit on one file; install large "
                       "content from a package repository")


def test_too_many_files_are_refused(recipe_dir: RecipeDir,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(assets, "MAX_FILES", 3)
    for n in range(4):
        recipe_dir.write(f"files/f{n}", str(n))
    with_files(recipe_dir, "files")
    [(_, _, message)] = recipe_dir.problems()
    assert message == ("'files': holds more than 3 files; pack them into an archive the "
                       "script unpacks")


def test_an_empty_directory_and_an_empty_list_are_refused(recipe_dir: RecipeDir) -> None:
    (recipe_dir.root / "empty").mkdir()
    with_files(recipe_dir, "empty")
    [(_, _, message)] = recipe_dir.problems()
    assert message == ("'empty' holds no files; put the build's files in it or remove it "
                       "from the list")
    recipe_dir.recipe(recipe_dir.valid(build=build_with(files=[])))
    [(_, field, message)] = recipe_dir.problems()
    assert field == "build.files" and message.startswith("is empty")


def test_a_control_character_in_a_file_name_is_refused(recipe_dir: RecipeDir) -> None:
    recipe_dir.write("files/bad\nname", "x")
    with_files(recipe_dir, "files")
    [(_, _, message)] = recipe_dir.problems()
    assert "holds the control character '\\n'" in message


def test_files_do_not_apply_to_a_build_template(recipe_dir: RecipeDir) -> None:
    recipe_dir.write("files/x", "x")
    recipe_dir.write("build.yaml", "Resources: {}\n")
    recipe_dir.recipe(recipe_dir.valid(build={"cloudformation": "build.yaml",
                                              "files": ["files"]}))
    problems = recipe_dir.problems()
    assert any(field == "build.files" and "does not apply to a build.cloudformation recipe"
               in message for _, field, message in problems)


def test_a_tampered_manifest_in_a_document_is_refused(recipe_dir: RecipeDir) -> None:
    recipe_dir.write("files/x", "x")
    with_files(recipe_dir, "files")
    [recipe] = recipe_dir.load()
    document = recipe.to_document()
    for forged in ({"files/x": {"sha256": "nothex", "size": 1}},
                   {"files/../../x": {"sha256": "a" * 64, "size": 1}}):
        document["assets"] = forged
        with pytest.raises(RecipeInvalid) as info:
            recipe_from_document(document)
        messages = [str(p) for p in info.value.problems]
        assert any(f"assets: {next(iter(forged))!r} is not a valid entry" in m
                   for m in messages)


def test_the_builder_manifest_and_object_keys() -> None:
    digest = "a" * 64
    listed = builder_manifest([Asset("files/my file", digest, 3)],
                              {"files/my file": "https://b/k?X=1"})
    assert listed == f"{digest} 3 https://b/k?X=1 files/my file\n"
    assert object_key(digest) == f"assets/sha256/{digest}"
    with pytest.raises(ValueError):
        object_key("../../etc")


def test_instance_profile_is_read_hashed_and_checked_against_the_stack(
        recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(build=build_with(instance_profile="web-builder")))
    [recipe] = recipe_dir.load()
    assert recipe.build.instance_profile == "web-builder"
    assert recipe_from_document(recipe.to_document()).hash == recipe.hash
    assert check_instance_profile("web-builder", ("web-builder",)) is None
    assert check_instance_profile("web-builder", ()) == (
        "instance profile 'web-builder' is not in the stack's AllowedInstanceProfiles: it "
        "allows none (AllowedInstanceProfiles is empty); redeploy with `amiforge deploy -p "
        "AllowedInstanceProfiles=...` naming it, or remove build.instance_profile")
    recipe_dir.recipe(recipe_dir.valid(build=build_with(
        instance_profile="arn:aws:iam::123456789012:instance-profile/x")))
    [(_, field, message)] = recipe_dir.problems()
    assert field == "build.instance_profile"
    assert "is not an instance profile name" in message


def test_the_wrapper_fetches_files_only_when_there_are_some() -> None:
    plain = wrap("linux", "true\n", recipe_name="web", recipe_hash="0" * 64)
    fetching = wrap("linux", "true\n", recipe_name="web", recipe_hash="0" * 64,
                    assets_url="https://bucket/launches/x?sig=1")
    assert "amiforge_fetch" not in plain and "AMIFORGE_FILES" not in plain
    assert "amiforge_assets_url='https://bucket/launches/x?sig=1'" in fetching
    windows = wrap("windows", "exit 0\n", recipe_name="web", recipe_hash="0" * 64,
                   assets_url="https://bucket/launches/x?sig=1")
    assert "$amiforgeAssetsUrl = 'https://bucket/launches/x?sig=1'" in windows
    with pytest.raises(ValueError):
        wrap("linux", "true\n", recipe_name="web", recipe_hash="0" * 64,
             assets_url="https://x/'; rm -rf /")
