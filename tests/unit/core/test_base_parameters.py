"""Base parameter names (allow-list) and values (AMI ids only): the pure rules."""

from __future__ import annotations

import pytest

from amiforge.core import rules


@pytest.mark.parametrize("value", ["ami-12345678", "ami-0123456789abcdef0"])
def test_ami_ids(value: str) -> None:
    assert rules.is_ami_id(value)


@pytest.mark.parametrize("value", ["", "ami-1234567", "ami-123456789", "ami-0123456789ABCDEF0",
                                   "hunter2", "ami-12345678\n", " ami-12345678", None, 42])
def test_not_ami_ids(value: object) -> None:
    assert not rules.is_ami_id(value)


def test_public_parameters_are_always_allowed() -> None:
    assert rules.check_base_parameter("/aws/service/ami-amazon-linux-latest/x") is None
    assert rules.check_base_parameter("aws/service/x") is None  # SSM's own relative form


@pytest.mark.parametrize("name", ["/prod/db/password", "/aws/servicex/y", "/golden", "/aws/"])
def test_other_parameters_need_an_allowed_prefix(name: str) -> None:
    assert rules.check_base_parameter(name) is not None
    # None of these is under /golden/ (not "/golden" itself either): still refused.
    assert rules.check_base_parameter(name, ("/golden/",)) is not None


def test_allowed_prefixes_are_whole_path_segments() -> None:
    assert rules.check_base_parameter("/golden/amis/web", ("/golden/",)) is None
    assert rules.check_base_parameter("/golden-evil/x", ("/golden/",)) == (
        "'/golden-evil/x' is not under /aws/service/ or the stack's BaseParameterPrefixes "
        "(/golden/): amiforge reads a base parameter only there, so that a recipe cannot "
        "read other parameters (secrets) through the stack")


@pytest.mark.parametrize(("text", "parsed"), [
    (None, ()), ("", ()), ("/golden/", ("/golden/",)), ("/a/, /b/c/", ("/a/", "/b/c/")),
])
def test_prefixes_parse(text: str | None, parsed: tuple[str, ...]) -> None:
    assert rules.parse_base_prefixes(text) == parsed


@pytest.mark.parametrize("text", ["golden", "/golden", "/a/,/b/,/c/,/d/", "/a b/", "/*/"])
def test_malformed_prefixes_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        rules.parse_base_prefixes(text)
