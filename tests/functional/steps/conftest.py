"""Fixtures for the step tests: each step runs in-process against the local cloud.

``stack`` (session scope: its clients and tables are made once) is what a deployed stack
gives its functions, made of only the resources the steps need: the catalog and recipe-store tables (shaped as the template's),
a builder security group, the cleanup queue and its dead-letter queue, a topic, and a
stack name for the ``amiforge:stack`` tag. Times are shrunk as the local stack does (a
recipe minute is one second). ``env`` is a fresh :class:`StepEnv` over the same resources
for one test (same clients; its catalog and store are read anew). Tests use unique recipe
names. A module whose step lists what the whole region holds (sweep, the gate's usage
scan, prune) overrides ``aws`` and ``stack`` with a home region of its own, so it meets
only its own resources, not every other module's leftovers.

The helpers in ``tests/helpers.py`` build the state a step receives from the steps before
it by running those steps (``resolved``, ``launched``, ``stopped``), never by hand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import (
    HOME,
    Publish,
    publish_recipe,
    response_server,
    stack_resources,
    unique,
    write_recipe,
)

from amiforge.aws.session import AwsContext
from amiforge.core.model import Recipe
from amiforge.steps.env import StepEnv


@pytest.fixture(scope="session")
def aws(local_cloud: Any) -> AwsContext:
    return AwsContext(region=HOME, endpoint_url=local_cloud.endpoint)


@pytest.fixture(scope="module", autouse=True)
def quick_builders(local_cloud: Any) -> Iterator[None]:
    """Simulated builders run 0.1 s here (a step test needs them stopped, not busy);
    the worker's setting is put back for the next module."""
    before = local_cloud.builder_seconds
    local_cloud.builder_seconds = 0.1
    try:
        yield
    finally:
        local_cloud.builder_seconds = before


@pytest.fixture(scope="session")
def stack(aws: AwsContext) -> StepEnv:
    return stack_resources(aws)


@pytest.fixture
def env(stack: StepEnv) -> StepEnv:
    return dataclasses.replace(stack)


@pytest.fixture
def recipe_dir(tmp_path: Path) -> Path:
    return tmp_path / "recipes"


@pytest.fixture
def published(env: StepEnv, recipe_dir: Path) -> Publish:
    """Write and publish a recipe: ``published(name?, script?, **write_recipe options)``."""

    def publish(name: str | None = None, script: str = "echo hello\n", **options: Any
                ) -> Recipe:
        recipe = write_recipe(recipe_dir, name or unique("web"), script, **options)
        publish_recipe(env, recipe)
        return recipe
    return publish


@pytest.fixture
def response_url() -> Iterator[Any]:
    """A custom resource's ResponseURL on loopback (``tests.helpers.response_server``)."""
    with response_server() as server:
        yield server


@pytest.fixture
def env_with_queues(stack: StepEnv, aws: AwsContext) -> StepEnv:
    """The stack, with a dead-letter and a cleanup queue of this test's own."""
    sqs = aws.client("sqs")
    return dataclasses.replace(
        stack, cleanup_dead_letter_url=sqs.create_queue(QueueName=unique("dlq"))["QueueUrl"],
        cleanup_queue_url=sqs.create_queue(QueueName=unique("cleanup"))["QueueUrl"])
