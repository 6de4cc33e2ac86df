"""Builds waiting for an image (or its copies) to become available: one marker per image.

The AwaitImage and AwaitCopies tasks park their task token here, in the catalog table's
``#image-waits`` partition (no recipe name can start with ``#``), one item per image
waited for, keyed by where EC2 will report it::

    recipe = "#image-waits", build_id = "<region>#<image id>",
    kind (image | copies), build_recipe, build, region, image_id, task_token,
    image (the CreateImage output, JSON), images (region -> image id, JSON), since

An "EC2 AMI State Change" event names a region and an image id: one GetItem finds the
build waiting for it, or nothing (an image that is not ours). The image check reads
the partition with one Query: its cost follows the number of images pending *now*.
Whoever answers a token removes every marker of that wait, so the partition holds at
most the images in flight. Nothing here decides anything: :mod:`amiforge.steps.image_wait`
does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from amiforge.aws.catalog import now_iso
from amiforge.aws.dynamo import deserialize, serialize, value
from amiforge.aws.errors import aws_call
from amiforge.aws.markers import partition_items, remove_if_token

IMAGE_WAITS_PARTITION = "#image-waits"


@dataclass(frozen=True)
class ImageWait:
    kind: str                   # "image": the home image; "copies": Distribute's copies
    recipe: str
    build_id: str
    region: str                 # where this marker's image lives (and its event arrives)
    image_id: str
    token: str
    since: str
    image: dict[str, Any] = field(default_factory=dict)   # CreateImage's output
    images: dict[str, str] = field(default_factory=dict)  # copies: region -> image id

    @property
    def key(self) -> str:
        return marker_key(self.region, self.image_id)


def marker_key(region: str, image_id: str) -> str:
    return f"{region}#{image_id}"


def _loads(text: Any, default: Any) -> Any:
    try:
        loaded = json.loads(text) if isinstance(text, str) else default
    except ValueError:
        return default
    return loaded if isinstance(loaded, type(default)) else default


def _wait_of(item: dict[str, Any]) -> ImageWait:
    record = deserialize(item)
    return ImageWait(kind=str(record.get("kind", "")), recipe=str(record.get("build_recipe", "")),
                     build_id=str(record.get("build", "")), region=str(record.get("region", "")),
                     image_id=str(record.get("image_id", "")),
                     token=str(record.get("task_token", "")), since=str(record.get("since", "")),
                     image=_loads(record.get("image"), {}), images=_loads(record.get("images"), {}))


class ImageWaitList:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self.db = dynamodb
        self.table = table

    def add(self, wait: ImageWait) -> None:
        item = {"recipe": IMAGE_WAITS_PARTITION, "build_id": wait.key, "kind": wait.kind,
                "build_recipe": wait.recipe, "build": wait.build_id, "region": wait.region,
                "image_id": wait.image_id, "task_token": wait.token,
                "image": json.dumps(wait.image), "images": json.dumps(wait.images),
                "since": wait.since or now_iso()}
        with aws_call("PutItem"):
            self.db.put_item(TableName=self.table, Item=serialize(item))

    def get(self, region: str, image_id: str) -> ImageWait | None:
        with aws_call("GetItem"):
            item = self.db.get_item(TableName=self.table, ConsistentRead=True, Key={
                "recipe": value(IMAGE_WAITS_PARTITION),
                "build_id": value(marker_key(region, image_id))}).get("Item")
        return _wait_of(item) if item else None

    def remove(self, region: str, image_id: str, token: str) -> bool:
        """Remove the marker if it still holds ``token``: a retried task may have parked
        a new token under the same key, and that one still waits. False if it did not."""
        return remove_if_token(self.db, self.table, IMAGE_WAITS_PARTITION,
                               marker_key(region, image_id), token)

    def all(self) -> Iterator[ImageWait]:
        for item in partition_items(self.db, self.table, IMAGE_WAITS_PARTITION):
            yield _wait_of(item)
