"""Recipe hashes are stable where they must be and change where they must; build keys."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amiforge.core.hashing import build_key, file_digest, normalise_file, recipe_hash
from amiforge.core.recipes import load_recipes

from ..conftest import RecipeDir

ORDERED = """\
name: web
description: Nginx tier
base:
  ssm_parameter: /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64
build:
  platform: linux
  user_data: scripts/web.sh
  instance_types: [t3.small, t3a.small]
image:
  name: "web-{date}-{short_hash}"
  tags: {team: web, tier: front}
retention: {keep: 3, max_age_days: 30}
"""
SHUFFLED = """\
retention: {max_age_days: 30, keep: 3}
image:
  tags: {tier: front, team: web}
  name: "web-{date}-{short_hash}"
build:
  instance_types: [t3.small, t3a.small]
  user_data: scripts/web.sh
  platform: linux
base:
  ssm_parameter: /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64
description: Nginx tier
name: web
"""
SCRIPT = "#!/bin/bash\nset -e\ndnf -y install nginx\n"


def _hash(recipe_dir: RecipeDir, recipe: str, script: str | bytes = SCRIPT,
          sub: str = "") -> str:
    recipe_dir.write(f"{sub}web.yaml", recipe)
    recipe_dir.write(f"{sub}scripts/web.sh", script)
    return load_recipes(recipe_dir.root / sub)[0].hash


def test_hash_is_sha256_hex(recipe_dir: RecipeDir) -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", _hash(recipe_dir, ORDERED))


def test_crlf_and_shuffled_keys_hash_equal(recipe_dir: RecipeDir) -> None:
    plain = _hash(recipe_dir, ORDERED)
    crlf = _hash(recipe_dir, SHUFFLED.replace("\n", "\r\n"),
                 SCRIPT.replace("\n", "\r\n").encode())
    assert crlf == plain


def test_hash_does_not_depend_on_where_the_recipe_lives(recipe_dir: RecipeDir) -> None:
    assert _hash(recipe_dir, ORDERED) == _hash(recipe_dir, ORDERED, sub="elsewhere/deeper/")


def test_spelling_out_defaults_does_not_change_the_hash(recipe_dir: RecipeDir) -> None:
    plain = _hash(recipe_dir, ORDERED)
    explicit = ORDERED.replace("  platform: linux\n", "  platform: linux\n  retries: 1\n"
                               "  timeout_minutes: 45\n  security_group_ids: []\n")
    assert _hash(recipe_dir, explicit) == plain


def test_changing_the_script_changes_the_hash(recipe_dir: RecipeDir) -> None:
    before = _hash(recipe_dir, ORDERED)
    assert _hash(recipe_dir, ORDERED, SCRIPT + "echo one more\n") != before


@pytest.mark.parametrize(("old", "new"), [
    ("description: Nginx tier", "description: Nginx tier, v2"),
    ("t3.small, t3a.small", "t3a.small, t3.small"),  # order is the launch preference
    ("team: web", "team: webops"),
    ("keep: 3", "keep: 4"),
    ("al2023-ami-kernel-6.1-x86_64", "al2023-ami-kernel-default-x86_64"),
    ("scripts/web.sh", "./scripts/web.sh"),
])
def test_changing_the_recipe_changes_the_hash(recipe_dir: RecipeDir, old: str, new: str) -> None:
    before = _hash(recipe_dir, ORDERED)
    assert old in ORDERED
    assert _hash(recipe_dir, ORDERED.replace(old, new)) != before


def test_inline_script_is_hashed(recipe_dir: RecipeDir) -> None:
    inline = ORDERED.replace("user_data: scripts/web.sh", "script: echo one")
    assert _hash(recipe_dir, inline) != _hash(recipe_dir, inline.replace("one", "two"))


def test_binary_files_are_not_normalised() -> None:
    binary = b"\x00\r\n\x01"
    assert normalise_file(binary) == binary
    assert normalise_file(b"a\r\nb\r\n") == b"a\nb\n"
    assert file_digest(b"a\r\nb") == file_digest(b"a\nb")
    assert file_digest(b"\x00\r\n") != file_digest(b"\x00\n")


def test_recipe_hash_ignores_the_non_content_keys_of_a_full_document() -> None:
    doc = {"name": "web", "build": {"script": "x"}}
    full = {**doc, "files": {"a": "eA=="}, "source": "/home/me/web.yaml", "hash": "0" * 64,
            "format": 1}
    assert recipe_hash(full, {}) == recipe_hash(doc, {})


def test_absent_and_null_optional_fields_hash_alike() -> None:
    # So a later amiforge that adds an optional field (as None) rebuilds nothing.
    assert recipe_hash({"name": "web", "extra": None}, {}) == recipe_hash({"name": "web"}, {})


def test_file_content_and_path_both_count() -> None:
    assert recipe_hash({}, {"a.sh": b"x"}) != recipe_hash({}, {"a.sh": b"y"})
    assert recipe_hash({}, {"a.sh": b"x"}) != recipe_hash({}, {"b.sh": b"x"})


# --- build keys ------------------------------------------------------------------------

def test_build_key_shape_and_determinism() -> None:
    key = build_key("web", "a" * 64, "ami-0123456789abcdef0")
    assert key == build_key("web", "a" * 64, "ami-0123456789abcdef0")
    assert re.fullmatch(r"web-[0-9a-f]{20}", key)


def test_build_key_changes_with_hash_or_base() -> None:
    key = build_key("web", "a" * 64, "ami-1")
    assert build_key("web", "b" * 64, "ami-1") != key
    assert build_key("web", "a" * 64, "ami-2") != key


def test_build_key_known_value() -> None:
    # Pinned: changing the scheme would let a second build of already-built content start.
    assert build_key("web", "h", "ami-1") == "web-af89f786a0850c8983bc"


@given(name=st.from_regex(r"[a-z0-9][a-z0-9-]{0,39}", fullmatch=True),
       digest=st.text(min_size=1, max_size=64), base=st.text(min_size=1, max_size=30))
def test_build_key_is_always_a_valid_execution_name(name: str, digest: str, base: str) -> None:
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", build_key(name, digest, base))


def test_build_key_refuses_names_that_cannot_be_execution_names() -> None:
    with pytest.raises(ValueError, match="cannot start a build key"):
        build_key("x" * 70, "h", "ami-1")


def test_recipe_hash_known_value() -> None:
    # Pinned: an accidental change to the scheme would rebuild every image everywhere.
    document = {"name": "web", "build": {"script": "echo hi"}}
    assert recipe_hash(document, {"a.sh": b"x\r\n"}) == (
        "0430bec84fe0c78696a8983e4dcbcb866ddc1a319d8b9718b16856bccbeae321")
