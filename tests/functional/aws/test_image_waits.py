"""aws/image_waits.py on the local cloud: one marker per image waited for in the catalog's
``#image-waits`` partition, found by (region, image id) with one GetItem, listed by one
Query, and removed only while it still holds the token its remover answered."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from tests.functional.aws.dynamo_tables import new_table

from amiforge.aws.catalog import Catalog
from amiforge.aws.image_waits import IMAGE_WAITS_PARTITION, ImageWait, ImageWaitList


@pytest.fixture()
def table(local_cloud: Any) -> tuple[Any, str]:
    db = boto3.client("dynamodb", region_name=local_cloud.region,
                      endpoint_url=local_cloud.endpoint)
    return db, new_table(db, "CatalogTable")


def a_wait(region: str, image_id: str, token: str, kind: str = "image") -> ImageWait:
    return ImageWait(kind=kind, recipe="web", build_id="web-1", region=region,
                     image_id=image_id, token=token, since="2026-01-01T10:00:00.000000Z",
                     image={"image_id": "ami-0aaaaaaaaaaaaaaaa", "name": "web-1"},
                     images={"us-east-1": "ami-0aaaaaaaaaaaaaaaa",
                             "eu-west-1": "ami-0bbbbbbbbbbbbbbbb"})


def test_a_marker_is_found_by_region_and_image_and_round_trips(table: tuple[Any, str]) -> None:
    db, name = table
    waits = ImageWaitList(db, name)
    wait = a_wait("eu-west-1", "ami-0bbbbbbbbbbbbbbbb", "t1", "copies")
    waits.add(wait)

    assert waits.get("eu-west-1", "ami-0bbbbbbbbbbbbbbbb") == wait
    # The same image id in another region is another image: no marker.
    assert waits.get("us-east-1", "ami-0bbbbbbbbbbbbbbbb") is None
    assert list(waits.all()) == [wait]
    assert list(Catalog(db, name).all_builds()) == []  # bookkeeping, not builds
    assert IMAGE_WAITS_PARTITION.startswith("#")


def test_a_marker_is_removed_only_with_the_token_it_holds(table: tuple[Any, str]) -> None:
    db, name = table
    waits = ImageWaitList(db, name)
    waits.add(a_wait("us-east-1", "ami-0aaaaaaaaaaaaaaaa", "old"))
    # A retried AwaitImage parked a new token under the same key.
    waits.add(a_wait("us-east-1", "ami-0aaaaaaaaaaaaaaaa", "new"))

    assert waits.remove("us-east-1", "ami-0aaaaaaaaaaaaaaaa", "old") is False
    assert [w.token for w in waits.all()] == ["new"]
    assert waits.remove("us-east-1", "ami-0aaaaaaaaaaaaaaaa", "new") is True
    assert list(waits.all()) == []
    # Already gone: nothing to remove, no error.
    assert waits.remove("us-east-1", "ami-0aaaaaaaaaaaaaaaa", "new") is True
