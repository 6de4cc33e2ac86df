"""The catalog: one DynamoDB item per build, keyed (recipe, build_id).

Table layout (see deploy/template.yaml):
  PK ``recipe`` (S), SK ``build_id`` (S)
  GSI ``available`` — PK ``available_recipe`` (S), SK ``created_at`` (S). Sparse: only
  AVAILABLE builds carry ``available_recipe``, so a recipe's AVAILABLE builds (few:
  retention prunes the rest) are one Query, however long the history is; which of them
  `latest` names is :func:`amiforge.core.latest.choose_latest`.
  Two partitions hold bookkeeping, not builds: ``#waiting`` (builds waiting for their
  builder to stop, aws/waits.py) and ``#limits`` (the launch budget, aws/pacing.py).

Status moves STARTING -> BUILDING -> AVAILABLE | FAILED | CANCELLED, and AVAILABLE ->
PRUNED (the meaning of each: core/statuses.py). Whoever starts a build writes STARTING
(with its execution) right after StartExecution, so a build is visible at once; Resolve
turns it into BUILDING, and a build that fails before (in Resolve) goes from STARTING to
FAILED. Every write that changes status is conditional, so a retried or duplicated step
cannot move a record back; the one move back, AVAILABLE -> BUILDING, is Register undoing
its own write when it cannot finish (:meth:`Catalog.unmark_available`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from amiforge.aws.dynamo import deserialize, serialize, value
from amiforge.aws.errors import aws_call, error_code, translate
from amiforge.core.latest import choose_latest
from amiforge.errors import AwsCallFailed, TransientAwsError

STARTING, BUILDING, AVAILABLE, FAILED, PRUNED = (
    "STARTING", "BUILDING", "AVAILABLE", "FAILED", "PRUNED")
# A build in flight: ``amiforge build`` follows it rather than starting another.
IN_FLIGHT = frozenset({STARTING, BUILDING})
CANCELLED = "CANCELLED"
# Taken from `latest` by `amiforge rollback`; `amiforge release` makes it AVAILABLE again.
REVOKED = "REVOKED"
LATEST_INDEX = "available"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Catalog:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self.db = dynamodb
        self.table = table

    # -- reads ---------------------------------------------------------------------
    def get(self, recipe: str, build_id: str) -> dict | None:
        with aws_call("GetItem"):
            item = self.db.get_item(
                TableName=self.table, ConsistentRead=True,
                Key={"recipe": value(recipe), "build_id": value(build_id)},
            ).get("Item")
        return deserialize(item) if item else None

    def get_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict]:
        """Records by (recipe, build_id), 100 per BatchGetItem, read consistently; missing
        ones are absent from the answer."""
        wanted = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], dict] = {}
        for start in range(0, len(wanted), 100):
            pending: dict[str, Any] = {self.table: {"ConsistentRead": True, "Keys": [
                {"recipe": value(r), "build_id": value(b)} for r, b in wanted[start:start + 100]]}}
            for attempt in range(8):
                with aws_call("BatchGetItem"):
                    page = self.db.batch_get_item(RequestItems=pending)
                for item in page.get("Responses", {}).get(self.table, []):
                    record = deserialize(item)
                    found[(record["recipe"], record["build_id"])] = record
                pending = page.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(min(0.05 * 2 ** attempt, 2.0))  # throttled: back off, ask again
            else:
                raise TransientAwsError("BatchGetItem: keys still unprocessed after 8 attempts")
        return found

    def available(self, recipe: str) -> list[dict]:
        """Every AVAILABLE build of ``recipe``, newest first: one Query on the sparse index
        (retention keeps this short, so it is one page)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "IndexName": LATEST_INDEX,
            "KeyConditionExpression": "available_recipe = :r",
            "ExpressionAttributeValues": {":r": value(recipe)}, "ScanIndexForward": False}
        found: list[dict] = []
        with aws_call("Query"):
            while True:
                page = self.db.query(**kwargs)
                found.extend(deserialize(item) for item in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    return found
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def latest(self, recipe: str, published_hash: str | None = None) -> dict | None:
        """The AVAILABLE build `latest` names (:func:`amiforge.core.latest.choose_latest`):
        a build of the published version first, then the newest."""
        chosen = choose_latest(self.available(recipe), published_hash)
        return dict(chosen) if chosen is not None else None

    def history(self, recipe: str, limit: int | None = None) -> list[dict]:
        """Every build of ``recipe``, newest first."""
        items = list(self._query_recipe(recipe))
        items.sort(key=lambda i: i.get("created_at", ""), reverse=True)
        return items[:limit] if limit else items

    def _query_recipe(self, recipe: str) -> Iterator[dict]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "recipe = :r",
            "ExpressionAttributeValues": {":r": value(recipe)},
        }
        with aws_call("Query"):
            while True:
                page = self.db.query(**kwargs)
                for item in page.get("Items", []):
                    yield deserialize(item)
                if "LastEvaluatedKey" not in page:
                    return
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def all_builds(self) -> Iterator[dict]:
        kwargs: dict[str, Any] = {"TableName": self.table}
        with aws_call("Scan"):
            while True:
                page = self.db.scan(**kwargs)
                for item in page.get("Items", []):
                    # "#waiting" and "#limits" items are bookkeeping, not builds
                    # (aws/waits.py, aws/pacing.py); no recipe name starts with "#".
                    if not item.get("recipe", {}).get("S", "").startswith("#"):
                        yield deserialize(item)
                if "LastEvaluatedKey" not in page:
                    return
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def find_key(self, recipe: str, build_key: str) -> list[dict]:
        """Builds of ``recipe`` with this build key (any status)."""
        return [b for b in self._query_recipe(recipe) if b.get("build_key") == build_key]

    # -- writes --------------------------------------------------------------------
    def announce(self, record: dict[str, Any]) -> bool:
        """Write the STARTING record of a build just started; False if it has one already.

        Called by whoever started the execution, right after StartExecution, so ``status``
        and ``history`` show the build before Resolve runs. Resolve may already have
        written BUILDING (it runs as soon as the execution starts): then this does nothing.
        """
        return self._put_new({**record, "status": STARTING})

    def start(self, record: dict[str, Any]) -> bool:
        """Create the BUILDING record, over the STARTING one if there is one; False if this
        build id is already past STARTING (a retried Resolve)."""
        return self._put_new({**record, "status": BUILDING}, over=STARTING)

    def _put_new(self, item: dict[str, Any], over: str | None = None) -> bool:
        item = {**item, "created_at": item.get("created_at") or now_iso(),
                "updated_at": now_iso()}
        kwargs: dict[str, Any] = {"TableName": self.table, "Item": serialize(item),
                                  "ConditionExpression": "attribute_not_exists(build_id)"}
        if over:
            kwargs["ConditionExpression"] += " OR #status = :over"
            kwargs["ExpressionAttributeNames"] = {"#status": "status"}
            kwargs["ExpressionAttributeValues"] = {":over": value(over)}
        try:
            self.db.put_item(**kwargs)
        except ClientError as err:
            if error_code(err) == "ConditionalCheckFailedException":
                return False
            raise translate(err, "PutItem") from err
        return True

    def update(self, recipe: str, build_id: str, *,
               only_if_status: str | tuple[str, ...] | None = None,
               remove: tuple[str, ...] = (), **fields: Any) -> bool:
        """Set fields on a record; with ``only_if_status``, only while it has that status
        (or one of those statuses)."""
        fields = {k: v for k, v in fields.items() if v is not None}
        fields["updated_at"] = now_iso()
        names = {f"#{i}": k for i, k in enumerate(fields)}
        values = {f":{i}": value(v) for i, v in enumerate(fields.values())}
        expression = "SET " + ", ".join(f"#{i} = :{i}" for i in range(len(fields)))
        if remove:
            for j, key in enumerate(remove):
                names[f"#r{j}"] = key
            expression += " REMOVE " + ", ".join(f"#r{j}" for j in range(len(remove)))
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"recipe": value(recipe), "build_id": value(build_id)},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ConditionExpression": "attribute_exists(build_id)",
        }
        if only_if_status:
            expected = ((only_if_status,) if isinstance(only_if_status, str)
                        else only_if_status)
            names["#status"] = "status"
            for j, status in enumerate(expected):
                values[f":expected{j}"] = value(status)
            kwargs["ConditionExpression"] += (
                " AND #status IN (" + ", ".join(f":expected{j}" for j in range(len(expected)))
                + ")")
        try:
            self.db.update_item(**kwargs)
        except ClientError as err:
            if error_code(err) == "ConditionalCheckFailedException":
                return False
            raise translate(err, "UpdateItem") from err
        return True

    def add_attempt(self, recipe: str, build_id: str, attempt: dict[str, Any]) -> bool:
        """Append ``attempt`` (its ``attempt`` number n counts from 1) to the record's
        ``attempts`` list, unless n attempts are already there: a retried Verify must not
        list the same launch twice. False if it was already recorded."""
        try:
            with aws_call("UpdateItem"):
                self.db.update_item(
                    TableName=self.table,
                    Key={"recipe": value(recipe), "build_id": value(build_id)},
                    UpdateExpression="SET #a = list_append(if_not_exists(#a, :empty), :one), "
                                     "#u = :now",
                    ConditionExpression="attribute_exists(build_id) AND "
                                        "(attribute_not_exists(#a) OR size(#a) < :n)",
                    ExpressionAttributeNames={"#a": "attempts", "#u": "updated_at"},
                    ExpressionAttributeValues={":empty": value([]), ":one": value([attempt]),
                                               ":now": value(now_iso()),
                                               ":n": value(int(attempt["attempt"]))})
        except AwsCallFailed as err:
            if err.code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def mark_cancelled(self, recipe: str, build_id: str, *, reason: str,
                       live: tuple[str, ...] = (BUILDING,)) -> bool:
        """CANCELLED with ``reason``, only while the record's status is one of ``live``: a
        build that finished meanwhile keeps its result (False)."""
        names = {"#s": "status", "#r": "reason", "#f": "finished_at", "#u": "updated_at",
                 "#t": "task_token"}
        values = {":c": value(CANCELLED), ":r": value(reason), ":now": value(now_iso())}
        values.update({f":l{i}": value(status) for i, status in enumerate(live)})
        try:
            with aws_call("UpdateItem"):
                self.db.update_item(
                    TableName=self.table,
                    Key={"recipe": value(recipe), "build_id": value(build_id)},
                    UpdateExpression="SET #s = :c, #r = :r, #f = :now, #u = :now REMOVE #t",
                    ConditionExpression="attribute_exists(build_id) AND #s IN ("
                                        + ", ".join(f":l{i}" for i in range(len(live))) + ")",
                    ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        except AwsCallFailed as err:
            if err.code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def put_many(self, records: Iterable[dict[str, Any]]) -> int:
        """Write records as they are, 25 per BatchWriteItem (imports, seeding); how many.

        No conditions: this is for filling an empty catalog, never for a live build.
        """
        count = 0
        batch: list[dict[str, Any]] = []
        for record in records:
            batch.append({"PutRequest": {"Item": serialize(record)}})
            count += 1
            if len(batch) == 25:
                self._write_batch(batch)
                batch = []
        if batch:
            self._write_batch(batch)
        return count

    def _write_batch(self, requests: list[dict[str, Any]]) -> None:
        pending = {self.table: requests}
        for attempt in range(8):
            with aws_call("BatchWriteItem"):
                pending = self.db.batch_write_item(RequestItems=pending).get(
                    "UnprocessedItems") or {}
            if not pending:
                return
            time.sleep(min(0.05 * 2 ** attempt, 2.0))  # throttled: back off, send the rest
        raise TransientAwsError(f"BatchWriteItem: {len(pending[self.table])} items still "
                                "unprocessed after 8 attempts")

    def mark_available(self, recipe: str, build_id: str, *, created_at: str,
                       **fields: Any) -> bool:
        return self.update(recipe, build_id, only_if_status=BUILDING, status=AVAILABLE,
                           available_recipe=recipe, finished_at=now_iso(),
                           remove=("task_token",), **fields)

    def unmark_available(self, recipe: str, build_id: str) -> bool:
        """Undo :meth:`mark_available` (AVAILABLE -> BUILDING), for a Register that could not
        finish: the failure path then records FAILED as for any failed build."""
        return self.update(recipe, build_id, only_if_status=AVAILABLE, status=BUILDING,
                           remove=("available_recipe", "finished_at"))

    def mark_failed(self, recipe: str, build_id: str, **fields: Any) -> bool:
        """FAILED from BUILDING, or from STARTING (a build that failed in Resolve)."""
        return self.update(recipe, build_id, only_if_status=(STARTING, BUILDING),
                           status=FAILED, finished_at=now_iso(), remove=("task_token",),
                           **fields)

    def record_failed(self, record: dict[str, Any]) -> bool:
        """A FAILED record for a build that has none (it died before any record was
        written: started, then its starter crashed, then Resolve failed)."""
        return self._put_new({**record, "status": FAILED, "finished_at": now_iso()})

    # -- rollback (ops/rollback.py) ------------------------------------------------------
    def revoke(self, recipe: str, build_id: str, *, reason: str, by: str, at: str,
               rolled_back_to: str, event: dict[str, Any]) -> bool:
        """AVAILABLE -> REVOKED, only while AVAILABLE (a retried or concurrent step cannot
        move it back): leaves the ``available`` index, records why, who, when and the
        build `latest` went back to, and appends ``event`` to ``rollbacks``."""
        return self._rollback_move(
            recipe, build_id, expected=AVAILABLE, event=event,
            set_fields={"status": REVOKED, "reason": reason, "revoked_at": at,
                        "revoked_by": by, "rolled_back_to": rolled_back_to},
            remove=("available_recipe",))

    def unrevoke(self, recipe: str, build_id: str, *, event: dict[str, Any]) -> bool:
        """REVOKED -> AVAILABLE, only while REVOKED (``amiforge release``, or a rollback
        undoing itself): back in the ``available`` index, the revocation's fields gone;
        ``event`` (appended to ``rollbacks``) keeps what happened."""
        return self._rollback_move(
            recipe, build_id, expected=REVOKED, event=event,
            set_fields={"status": AVAILABLE, "available_recipe": recipe},
            remove=("reason", "revoked_at", "revoked_by", "rolled_back_to"))

    def note_rollback(self, recipe: str, build_id: str, *, event: dict[str, Any],
                      expected: str = AVAILABLE) -> bool:
        """Append ``event`` to the record's ``rollbacks``, only while it is ``expected``
        (a rollback target must still be AVAILABLE)."""
        return self._rollback_move(recipe, build_id, expected=expected, event=event,
                                   set_fields={}, remove=())

    def _rollback_move(self, recipe: str, build_id: str, *, expected: str,
                       event: dict[str, Any], set_fields: dict[str, Any],
                       remove: tuple[str, ...]) -> bool:
        fields = {**set_fields, "updated_at": now_iso()}
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        values = {f":f{i}": value(v) for i, v in enumerate(fields.values())}
        names.update({"#status": "status", "#log": "rollbacks"})
        values.update({":expected": value(expected), ":empty": value([]),
                       ":event": value([event])})
        expression = ("SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
                      + ", #log = list_append(if_not_exists(#log, :empty), :event)")
        if remove:
            names.update({f"#r{j}": key for j, key in enumerate(remove)})
            expression += " REMOVE " + ", ".join(f"#r{j}" for j in range(len(remove)))
        try:
            with aws_call("UpdateItem"):
                self.db.update_item(
                    TableName=self.table,
                    Key={"recipe": value(recipe), "build_id": value(build_id)},
                    UpdateExpression=expression,
                    ConditionExpression="attribute_exists(build_id) AND #status = :expected",
                    ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        except AwsCallFailed as err:
            if err.code == "ConditionalCheckFailedException":
                return False
            raise
        return True
