"""The recipe store: published recipes in DynamoDB.

Items, PK ``name`` (S), SK ``version`` (S):
  ``current``       the version builds use now: document, hash, git_commit, published_at,
                    the claim of its newest build: last_build_key, last_build_id,
                    last_base_ami, last_hash (see :meth:`claim`), and ``retired_at``
                    while the recipe is retired (:meth:`retire`; publishing clears it)
  ``hash#<hash>``   every version ever published, so a build in flight keeps reading the
                    exact recipe it started with even if a newer one is published meanwhile.
Documents are :meth:`amiforge.core.model.Recipe.to_document` output, stored as JSON text.

The global secondary index ``current`` (partition key ``version``) lists the current items
with one Query on its ``current`` partition: a Scan would read, and bill, every version
ever published. The index is eventually consistent, so a caller that must see a recipe
it has just published reads it by name (:meth:`current`, a consistent GetItem).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from amiforge.aws.catalog import now_iso
from amiforge.aws.dynamo import deserialize, serialize, value
from amiforge.aws.errors import ClientError, aws_call, error_code, translate

CURRENT = "current"
CURRENT_INDEX = "current"  # the GSI over ``version``: its "current" partition


class RecipeStore:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self.db = dynamodb
        self.table = table

    def publish(self, name: str, recipe_hash: str, document: dict[str, Any],
                git_commit: str | None) -> bool:
        """Store a version and make it current. Returns True if the current hash changed."""
        previous = self.current(name)
        body = json.dumps(document, sort_keys=True, separators=(",", ":"))
        item = {"name": name, "hash": recipe_hash, "document": body,
                "git_commit": git_commit, "published_at": now_iso()}
        with aws_call("PutItem"):
            self.db.put_item(TableName=self.table,
                             Item=serialize({**item, "version": f"hash#{recipe_hash}"}))
        # UpdateItem, not PutItem: the current item also carries the build claim.
        fields = {k: v for k, v in item.items() if k != "name" and v is not None}
        names = {f"#{i}": k for i, k in enumerate(fields)}
        values = {f":{i}": value(v) for i, v in enumerate(fields.values())}
        names["#retired"] = "retired_at"  # publishing a retired recipe brings it back
        with aws_call("UpdateItem"):
            self.db.update_item(
                TableName=self.table,
                Key={"name": value(name), "version": value(CURRENT)},
                UpdateExpression="SET " + ", ".join(f"#{i} = :{i}" for i in range(len(fields)))
                                 + " REMOVE #retired",
                ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        return previous is None or previous["hash"] != recipe_hash

    def retire(self, name: str) -> str | None:
        """Mark a published recipe retired (detection and ``amiforge build`` leave it
        alone; retention and ``latest`` go on); the time it was retired, None if
        ``name`` is not published. Retiring again keeps the first time."""
        try:
            answer = self.db.update_item(
                TableName=self.table,
                Key={"name": value(name), "version": value(CURRENT)},
                UpdateExpression="SET retired_at = if_not_exists(retired_at, :t)",
                ConditionExpression="attribute_exists(#n)",
                ExpressionAttributeNames={"#n": "name"},
                ExpressionAttributeValues={":t": value(now_iso())}, ReturnValues="ALL_NEW")
        except ClientError as err:
            if error_code(err) == "ConditionalCheckFailedException":
                return None
            raise translate(err, "UpdateItem") from err
        return str(deserialize(answer["Attributes"])["retired_at"])

    def claim(self, name: str, build_key: str, *, build_id: str, base_ami: str,
              recipe_hash: str, previous: str | None = None) -> bool:
        """Claim the right to build ``build_key``: True for exactly one caller.

        A conditional write on the recipe's current item: concurrent detections (or a
        detection and a publish) race here, and only the first wins. ``previous``: for a
        further build of the key already claimed (a retry, a rebuild), the build id it
        follows; the claim then moves from that build to ``build_id``, once.
        """
        condition = ("attribute_exists(#n) AND (attribute_not_exists(last_build_key) "
                     "OR last_build_key <> :k")
        values = {":k": value(build_key), ":b": value(build_id),
                  ":a": value(base_ami), ":h": value(recipe_hash)}
        if previous:
            condition += " OR last_build_id = :p"
            values[":p"] = value(previous)
        try:
            self.db.update_item(
                TableName=self.table,
                Key={"name": value(name), "version": value(CURRENT)},
                UpdateExpression="SET last_build_key = :k, last_build_id = :b, "
                                 "last_base_ami = :a, last_hash = :h",
                ConditionExpression=condition + ")",
                ExpressionAttributeNames={"#n": "name"}, ExpressionAttributeValues=values)
        except ClientError as err:
            if error_code(err) == "ConditionalCheckFailedException":
                return False
            raise translate(err, "UpdateItem") from err
        return True

    def current(self, name: str) -> dict[str, Any] | None:
        return self._get(name, CURRENT)

    def version(self, name: str, recipe_hash: str) -> dict[str, Any] | None:
        return self._get(name, f"hash#{recipe_hash}")

    def _get(self, name: str, version: str) -> dict[str, Any] | None:
        with aws_call("GetItem"):
            item = self.db.get_item(
                TableName=self.table, ConsistentRead=True,
                Key={"name": value(name), "version": value(version)},
            ).get("Item")
        if not item:
            return None
        record = deserialize(item)
        record["document"] = json.loads(record["document"])
        return record

    def all_current(self) -> Iterator[dict[str, Any]]:
        """Every recipe's current item: a Query of the ``current`` index, page by page."""
        with aws_call("Query"):
            for page in self.db.get_paginator("query").paginate(
                    TableName=self.table, IndexName=CURRENT_INDEX,
                    KeyConditionExpression="#v = :c", ExpressionAttributeNames={"#v": "version"},
                    ExpressionAttributeValues={":c": value(CURRENT)}):
                for item in page.get("Items", []):
                    record = deserialize(item)
                    record["document"] = json.loads(record["document"])
                    yield record

    def named(self, names: Iterable[str]) -> list[dict[str, Any]]:
        """The current items of ``names`` that exist, read consistently (just published)."""
        return [record for name in sorted(set(names)) if (record := self.current(name))]
