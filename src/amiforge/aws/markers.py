"""Markers in a partition of the catalog table: the parked task tokens of builds that
wait for something (a stop, an image, an instance refresh).

Each kind of wait keeps its markers under a partition key no recipe name can take
(``#waiting``, ``#image-waits``, ``#refresh-waits``); :mod:`amiforge.aws.waits`,
:mod:`amiforge.aws.image_waits` and :mod:`amiforge.aws.refresh_waits` give them their
shapes. What they share is here: reading a whole partition (one Query, however many
builds there are: its cost follows what waits *now*) and removing a marker only while
it still holds the token that was answered (a retried task may have parked a new token
under the same key, and that one still waits).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from amiforge.aws.dynamo import value
from amiforge.aws.errors import aws_call
from amiforge.errors import AwsCallFailed


def partition_items(db: Any, table: str, partition: str) -> Iterator[dict[str, Any]]:
    """Every item of ``partition``, as DynamoDB returns them (not deserialised)."""
    with aws_call("Query"):
        for page in db.get_paginator("query").paginate(
                TableName=table, KeyConditionExpression="recipe = :w",
                ExpressionAttributeValues={":w": value(partition)}):
            yield from page.get("Items", [])


def remove_if_token(db: Any, table: str, partition: str, key: str, token: str) -> bool:
    """Delete the marker ``key`` if it is gone already or still holds ``token``; False
    if another token took its place."""
    try:
        with aws_call("DeleteItem"):
            db.delete_item(
                TableName=table, Key={"recipe": value(partition), "build_id": value(key)},
                ConditionExpression="attribute_not_exists(build_id) OR task_token = :t",
                ExpressionAttributeValues={":t": value(token)})
    except AwsCallFailed as err:
        if err.code == "ConditionalCheckFailedException":
            return False
        raise
    return True
