"""Fixtures for the custom-resource tests: a ResponseURL on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.helpers import response_server


@pytest.fixture
def response_url() -> Iterator[Any]:
    """A custom resource's ResponseURL on loopback (``tests.helpers.response_server``)."""
    with response_server() as server:
        yield server
