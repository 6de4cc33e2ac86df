"""DynamoDB fills: conditional writes are atomic, as on AWS (see :mod:`.atomic`)."""

from __future__ import annotations

from amiforge.localcloud.fills import Fill
from amiforge.localcloud.fills.atomic import serialised

_BACKEND = "moto.dynamodb.models:DynamoDBBackend"

FILLS = [
    Fill("dynamodb.put-item-atomic", _BACKEND, "put_item", serialised, "f5d9a5042c77"),
    Fill("dynamodb.update-item-atomic", _BACKEND, "update_item", serialised, "218984588dd6"),
    Fill("dynamodb.delete-item-atomic", _BACKEND, "delete_item", serialised, "083a4bb1af18"),
    Fill("dynamodb.transact-write-items-atomic", _BACKEND, "transact_write_items",
         serialised, "81db2cb7d94e"),
]
