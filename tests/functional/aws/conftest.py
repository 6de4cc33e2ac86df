"""Shared by the adapter tests: an AwsContext on the local cloud (in-process), and
unique names so tests sharing the session's cloud never see each other's resources."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from amiforge.aws.session import AwsContext


@pytest.fixture()
def aws(local_cloud: Any) -> AwsContext:
    return AwsContext(region=local_cloud.region, endpoint_url=local_cloud.endpoint)


@pytest.fixture()
def unique() -> Callable[[str], str]:
    """``unique("web")`` -> "web-<10 hex>"."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def dynamodb(local_cloud: Any) -> Any:
    return boto3.client("dynamodb", region_name=local_cloud.region,
                        endpoint_url=local_cloud.endpoint)
