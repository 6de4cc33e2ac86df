"""aws/session.py: clients made once per (service, region) against the local cloud, and
endpoints, regions and profiles refused with one line before any call."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from amiforge.aws.session import AwsContext, check_endpoint_url
from amiforge.errors import InvalidInput


def test_clients_are_cached_per_service_and_region(local_cloud: Any) -> None:
    aws = AwsContext(region=local_cloud.region, endpoint_url=local_cloud.endpoint)
    assert aws.client("sts") is aws.client("sts")
    assert aws.client("ec2", "eu-west-1") is not aws.client("ec2")
    assert aws.client("ec2", "eu-west-1").meta.region_name == "eu-west-1"
    assert aws.client("sts").get_caller_identity()["Account"]
    assert aws.resolved_region == local_cloud.region


@pytest.mark.parametrize("url", ["127.0.0.1:4566", "htp://x", "http://", "http://h:port"])
def test_a_bad_endpoint_is_refused_with_the_fix(url: str) -> None:
    with pytest.raises(InvalidInput, match="http://127.0.0.1:4566"):
        check_endpoint_url(url)
    with pytest.raises(InvalidInput):
        AwsContext(region="us-east-1", endpoint_url=url).client("sts")


def test_an_unknown_region_or_profile_is_refused(local_cloud: Any) -> None:
    with pytest.raises(InvalidInput, match="mars-1"):
        AwsContext(region="mars-1", endpoint_url=local_cloud.endpoint).client("sts")
    with pytest.raises(InvalidInput, match="profile 'amiforge-no-such-profile'"):
        AwsContext(profile="amiforge-no-such-profile").client("sts")


def test_contexts_share_one_parsed_copy_of_the_service_models(local_cloud: Any) -> None:
    first = AwsContext(region=local_cloud.region, endpoint_url=local_cloud.endpoint)
    second = AwsContext(region=local_cloud.region, endpoint_url=local_cloud.endpoint)
    first.client("ec2")
    second.client("ec2")
    loader = first._session()._loader
    assert loader is second._session()._loader
    # boto3 adds its data directory for every Session: the shared loader keeps one entry
    assert len(loader.search_paths) == len(set(loader.search_paths))
    assert (loader.load_service_model("ec2", "service-2")
            is loader.load_service_model("ec2", "service-2"))
    assert second.client("ec2").describe_regions()["Regions"]


def test_a_missing_profile_is_still_refused_with_the_fix(monkeypatch: Any) -> None:
    with pytest.raises(InvalidInput, match="aws configure list-profiles"):
        AwsContext(region="us-east-1", profile="no-such-profile").client("sts")


def test_short_client_backoff_keeps_every_attempt(local_cloud: Any,
                                                  short_client_backoff: None) -> None:
    # The fixture the unreadable-region tests use: RETRY_CONFIG's retries all made.
    client = AwsContext(region=local_cloud.region, endpoint_url=local_cloud.endpoint
                        ).client("ssm", "zz-fake-9")
    started = time.monotonic()
    with pytest.raises(ClientError) as failed:
        client.get_parameter(Name="/any")
    metadata = failed.value.response["ResponseMetadata"]
    assert metadata["MaxAttemptsReached"] and metadata["RetryAttempts"] == 8
    assert time.monotonic() - started < 5  # real backoff: up to 20 s a wait
