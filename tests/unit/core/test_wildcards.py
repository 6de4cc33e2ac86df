"""EC2 filter wildcards (``core/wildcards.py``): ``*``, ``?``, backslash escapes, case."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amiforge.core.wildcards import wildcard_match


@pytest.mark.parametrize(("pattern", "name", "matches"), [
    ("al2023-ami-*", "al2023-ami-2023.6.20241212.0-kernel-6.1-x86_64", True),
    ("al2023-ami-*", "al2023-ami-", True),  # * is zero or more
    ("al2023-ami-*", "amzn2-ami-hvm-2.0", False),
    ("al2023-ami-*", "xal2023-ami-1", False),  # anchored at the start
    ("*-x86_64", "al2023-ami-1-x86_64", True),
    ("*-x86_64", "al2023-ami-1-x86_64-minimal", False),  # and at the end
    ("ubuntu-?", "ubuntu-1", True),
    ("ubuntu-?", "ubuntu-", False),  # ? is exactly one
    ("ubuntu-?", "ubuntu-12", False),
    ("AL2023-*", "al2023-1", False),  # case-sensitive
    ("web.v1-*", "web.v1-3", True),
    ("web.v1-*", "webXv1-3", False),  # regex characters are literal
    ("a[1]-*", "a[1]-x", True),
    ("a[1]-*", "a1-x", False),  # no character classes
    (r"lit\*eral", "lit*eral", True),
    (r"lit\*eral", "litXeral", False),  # an escaped star is a star
    (r"q\?", "q?", True),
    (r"q\?", "qx", False),
    ("back\\\\slash", "back\\slash", True),
    ("trail\\", "trail\\", True),
    ("multi\nline-*", "multi\nline-1", True),
])
def test_a_name_matches_as_ec2_would_match_it(pattern: str, name: str, matches: bool) -> None:
    assert wildcard_match(pattern, name) is matches


def _escaped(text: str) -> str:
    return "".join("\\" + c if c in "*?\\" else c for c in text)


@given(st.text(max_size=30), st.text(max_size=30))
def test_an_escaped_name_matches_itself_and_only_itself(name: str, other: str) -> None:
    assert wildcard_match(_escaped(name), name)
    assert wildcard_match(_escaped(name), other) is (other == name)


@given(st.text(max_size=20), st.text(max_size=20))
def test_a_prefix_and_a_star_match_every_name_that_starts_with_it(prefix: str,
                                                                  rest: str) -> None:
    assert wildcard_match(_escaped(prefix) + "*", prefix + rest)
    assert wildcard_match("?" * len(prefix), prefix)
