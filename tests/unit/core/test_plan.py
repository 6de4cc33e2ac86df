"""Plan decisions: each of the four reasons, and the document diff that explains changes."""

from amiforge.core.hashing import build_key
from amiforge.core.plan import (
    BASE_CHANGED,
    BUILD,
    NEVER_BUILT,
    NO_BASE,
    RECIPE_CHANGED,
    SKIP,
    UP_TO_DATE,
    decide,
    document_changes,
)

HASH_A, HASH_B = "a" * 64, "b" * 64


def claim(recipe_hash: str, base: str) -> dict:
    return {"last_build_key": build_key("web", recipe_hash, base), "last_hash": recipe_hash,
            "last_base_ami": base, "last_build_id": "web-123"}


def test_never_built() -> None:
    d = decide(name="web", recipe_hash=HASH_A, base_ami="ami-1", last=None)
    assert (d.action, d.reason) == (BUILD, NEVER_BUILT)
    assert d.build_key == build_key("web", HASH_A, "ami-1")


def test_up_to_date_when_the_key_matches() -> None:
    d = decide(name="web", recipe_hash=HASH_A, base_ami="ami-1", last=claim(HASH_A, "ami-1"))
    assert (d.action, d.reason, d.detail) == (SKIP, UP_TO_DATE, "built as web-123")


def test_base_changed_names_both_images() -> None:
    d = decide(name="web", recipe_hash=HASH_A, base_ami="ami-2", last=claim(HASH_A, "ami-1"))
    assert (d.action, d.reason, d.detail) == (BUILD, BASE_CHANGED, "from ami-1 to ami-2")
    assert d.previous_base_ami == "ami-1"


def test_recipe_changed_names_the_files() -> None:
    d = decide(name="web", recipe_hash=HASH_B, base_ami="ami-1", last=claim(HASH_A, "ami-1"),
               changes=("scripts/web.sh",))
    assert (d.action, d.reason, d.detail) == (BUILD, RECIPE_CHANGED, "changed: scripts/web.sh")


def test_recipe_and_base_changed_says_both() -> None:
    d = decide(name="web", recipe_hash=HASH_B, base_ami="ami-2", last=claim(HASH_A, "ami-1"))
    assert d.reason == RECIPE_CHANGED
    assert d.detail == "recipe content changed; base also changed from ami-1 to ami-2"


def test_unresolvable_base_is_skipped_with_the_problem() -> None:
    d = decide(name="web", recipe_hash=HASH_A, base_ami=None, last=None,
               base_problem="SSM parameter /x does not exist")
    assert (d.action, d.reason, d.detail) == (SKIP, NO_BASE, "SSM parameter /x does not exist")


def test_document_changes_lists_files_and_fields() -> None:
    old = {"name": "web", "build": {"retries": 1, "script": "a"}, "files": {"s.sh": "YQ=="},
           "hash": "x", "source": "a.yaml"}
    new = {"name": "web", "build": {"retries": 2, "script": "b"}, "files": {"s.sh": "Yg=="},
           "hash": "y", "source": "b.yaml"}
    assert document_changes(old, new) == ("build.retries", "s.sh")
    assert document_changes(None, new) == ()
