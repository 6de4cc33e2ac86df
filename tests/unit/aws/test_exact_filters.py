"""EC2 filters are built from exact build ids only: a pattern is refused before any call."""

from __future__ import annotations

import pytest

from amiforge.aws import ec2_lifecycle
from amiforge.errors import InvalidInput


class NoCalls:
    """A client that must not be used: the refusal comes first."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"{name} called with a pattern")


@pytest.mark.parametrize("build_id", ["h1*", "*", "web-?", "web-0123456789abcdef012[3]"])
@pytest.mark.parametrize("listing", [ec2_lifecycle.build_images, ec2_lifecycle.build_snapshots])
def test_a_pattern_never_becomes_a_filter(listing: object, build_id: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        listing(NoCalls(), build_id)  # type: ignore[operator]
    assert repr(build_id) in str(caught.value)
