"""The catalog: one DynamoDB item per build, keyed (recipe, build_id).

Table layout (deploy/template.yaml; docs/architecture.md, "Data", says why):
  PK ``recipe`` (S), SK ``build_id`` (S);
  GSI ``available`` (``available_recipe``, ``created_at``), sparse: only AVAILABLE builds
  carry its key, so a recipe's AVAILABLE builds are one Query however long the history;
  which of them `latest` names is :func:`amiforge.core.latest.choose_latest`;
  GSI ``history`` (``recipe``, ``created_at``): ``history(limit=n)`` and ``status`` read n
  items newest first. A table without the index yet (retained by an older stack, or while
  DynamoDB fills it) answers ValidationException: the partition is read whole, as before.
  Bookkeeping partitions, not builds: ``#waiting`` (aws/waits.py), ``#limits``
  (aws/pacing.py) and ``#in-flight`` (aws/in_flight.py: one marker per build that
  entered STARTING, written here before the record, so the sweeper's read is bounded).

Every read is bounded by what it returns, not by the history; ``items_read`` counts what
DynamoDB read (tests/functional/aws/test_catalog.py, bench/catalog_reads.py). ``find_key``
is a Query on ``begins_with(build_id, key)``: every build id starts with its build key.

Status moves STARTING -> BUILDING -> AVAILABLE | FAILED | CANCELLED; AVAILABLE -> PRUNED
| REVOKED (-> AVAILABLE by ``amiforge release``); BUILDING -> AWAITING_APPROVAL ->
BUILDING | FAILED | CANCELLED with ``release.approval: manual`` (meanings:
core/statuses.py). Whoever starts a build writes STARTING right after StartExecution, so
a build is visible at once; Resolve turns it into BUILDING. Every write that changes
status is conditional, so a retried or duplicated step cannot move a record back; the one
move back, AVAILABLE -> BUILDING, is Register undoing its own write when it cannot finish
(:meth:`Catalog.unmark_available`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, cast

from amiforge.aws.dynamo import deserialize, serialize, value
from amiforge.aws.errors import aws_call
from amiforge.core.latest import choose_latest
from amiforge.core.records import BuildRecord
from amiforge.core.statuses import IN_FLIGHT, BuildStatus
from amiforge.errors import AwsCallFailed, TransientAwsError

# The statuses by their old names (callers import them from here).
STARTING = BuildStatus.STARTING
BUILDING = BuildStatus.BUILDING
AWAITING_APPROVAL = BuildStatus.AWAITING_APPROVAL
AVAILABLE = BuildStatus.AVAILABLE
FAILED = BuildStatus.FAILED
CANCELLED = BuildStatus.CANCELLED
PRUNED = BuildStatus.PRUNED
# Taken from `latest` by `amiforge rollback`; `amiforge release` makes it AVAILABLE again.
REVOKED = BuildStatus.REVOKED
LATEST_INDEX = "available"
HISTORY_INDEX = "history"
IN_FLIGHT_PARTITION = "#in-flight"

__all__ = ["AVAILABLE", "AWAITING_APPROVAL", "BUILDING", "CANCELLED", "FAILED", "HISTORY_INDEX",
           "IN_FLIGHT", "IN_FLIGHT_PARTITION", "LATEST_INDEX", "PRUNED", "REVOKED", "STARTING",
           "Catalog", "marker_key", "now_iso"]


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(item: Mapping[str, Any]) -> BuildRecord:
    return cast(BuildRecord, deserialize(dict(item)))


def marker_key(recipe: str, build_id: str) -> dict[str, Any]:
    """The key of a build's ``#in-flight`` marker (aws/in_flight.py)."""
    return {"recipe": value(IN_FLIGHT_PARTITION), "build_id": value(f"{recipe}#{build_id}")}


class Catalog:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self.db = dynamodb
        self.table = table
        # Items DynamoDB read for this adapter (each response's ScannedCount; one per item
        # GetItem/BatchGetItem found): what a read costs, whatever the history's length.
        self.items_read = 0

    # -- reads ---------------------------------------------------------------------
    def get(self, recipe: str, build_id: str) -> BuildRecord | None:
        with aws_call("GetItem"):
            item = self.db.get_item(
                TableName=self.table, ConsistentRead=True,
                Key={"recipe": value(recipe), "build_id": value(build_id)},
            ).get("Item")
        self.items_read += 1 if item else 0
        return _record(item) if item else None

    def get_many(self, keys: Iterable[tuple[str, str]]
                 ) -> dict[tuple[str, str], BuildRecord]:
        """Records by (recipe, build_id), 100 per BatchGetItem, read consistently; missing
        ones are absent from the answer."""
        wanted = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], BuildRecord] = {}
        for start in range(0, len(wanted), 100):
            pending: dict[str, Any] = {self.table: {"ConsistentRead": True, "Keys": [
                {"recipe": value(r), "build_id": value(b)} for r, b in wanted[start:start + 100]]}}
            for attempt in range(8):
                with aws_call("BatchGetItem"):
                    page = self.db.batch_get_item(RequestItems=pending)
                for item in page.get("Responses", {}).get(self.table, []):
                    record = _record(item)
                    self.items_read += 1
                    found[(record["recipe"], record["build_id"])] = record
                pending = page.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(min(0.05 * 2 ** attempt, 2.0))  # throttled: back off, ask again
            else:
                raise TransientAwsError("BatchGetItem: keys still unprocessed after 8 attempts")
        return found

    def query(self, limit: int | None = None, *, page_size: int | None = None,
              **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Items of a Query, through botocore's paginator; with ``limit``, each request
        asks for at most that many (``Limit``) and paging stops there; with ``page_size``,
        pages are that small, so a reader that stops early reads little."""
        config = ({"PageSize": limit, "MaxItems": limit} if limit
                  else {"PageSize": page_size} if page_size else {})
        with aws_call("Query"):
            for page in self.db.get_paginator("query").paginate(
                    TableName=self.table, PaginationConfig=config, **kwargs):
                yield from self._counted(page)

    def _scan(self) -> Iterator[dict[str, Any]]:
        with aws_call("Scan"):
            for page in self.db.get_paginator("scan").paginate(TableName=self.table):
                yield from self._counted(page)

    def _counted(self, page: Mapping[str, Any]) -> list[dict[str, Any]]:
        self.items_read += int(page.get("ScannedCount", page.get("Count", 0)))
        return list(page.get("Items", []))

    def available(self, recipe: str) -> list[BuildRecord]:
        """Every AVAILABLE build of ``recipe``, newest first: one Query on the sparse index
        (retention keeps this short, so it is one page)."""
        return [_record(i) for i in self.query(
            IndexName=LATEST_INDEX, KeyConditionExpression="available_recipe = :r",
            ExpressionAttributeValues={":r": value(recipe)}, ScanIndexForward=False)]

    def latest(self, recipe: str, published_hash: str | None = None) -> BuildRecord | None:
        """The AVAILABLE build `latest` names (:func:`amiforge.core.latest.choose_latest`):
        a build of the published version first, then the newest.

        Read newest first, a page of 10 at a time, only as far as the rule needs: past the
        newest build of the published version (nothing older can outrank it) and the
        builds created at that same instant. Without a published build in the index (or
        no published hash), every AVAILABLE build is read, as few as retention keeps."""
        read: list[BuildRecord] = []
        found_at: str | None = None
        for item in self.query(
                page_size=10, IndexName=LATEST_INDEX,
                KeyConditionExpression="available_recipe = :r",
                ExpressionAttributeValues={":r": value(recipe)}, ScanIndexForward=False):
            record = _record(item)
            created = str(record.get("created_at") or "")
            if found_at is not None and created < found_at:
                break
            read.append(record)
            if found_at is None and (published_hash is None
                                     or record.get("recipe_hash") == published_hash):
                found_at = created
        chosen = choose_latest(read, published_hash)
        return cast(BuildRecord, dict(chosen)) if chosen is not None else None

    def history(self, recipe: str, limit: int | None = None) -> list[BuildRecord]:
        """The newest ``limit`` builds of ``recipe`` (every build without), newest first."""
        try:
            return [_record(i) for i in self.query(
                limit, IndexName=HISTORY_INDEX,
                KeyConditionExpression="recipe = :r",
                ExpressionAttributeValues={":r": value(recipe)}, ScanIndexForward=False)]
        except AwsCallFailed as err:
            # What this fixed Query meets when the table has no (usable) history index
            # yet: ValidationException from AWS, ResourceNotFoundException from the
            # local cloud (and for a missing table, which the partition read reports
            # again). Read the partition, as before the index.
            if err.code not in ("ValidationException", "ResourceNotFoundException"):
                raise
        items = [_record(i) for i in self.query(
            KeyConditionExpression="recipe = :r",
            ExpressionAttributeValues={":r": value(recipe)})]
        items.sort(key=lambda i: i.get("created_at", ""), reverse=True)
        return items[:limit] if limit else items

    def all_builds(self) -> Iterator[BuildRecord]:
        for item in self._scan():
            # "#waiting", "#limits" and "#in-flight" items are bookkeeping, not builds
            # (aws/waits.py, aws/pacing.py, aws/in_flight.py); no recipe name starts
            # with "#".
            if not item.get("recipe", {}).get("S", "").startswith("#"):
                yield _record(item)

    def find_key(self, recipe: str, build_key: str) -> list[BuildRecord]:
        """Builds of ``recipe`` with this build key (any status): every build id of a key
        starts with the key, so this reads that key's builds only."""
        return [_record(i) for i in self.query(
            KeyConditionExpression="recipe = :r AND begins_with(build_id, :k)",
            FilterExpression="build_key = :k",
            ExpressionAttributeValues={":r": value(recipe), ":k": value(build_key)})]

    def mark_in_flight(self, recipe: str, build_id: str) -> None:
        with aws_call("PutItem"):
            self.db.put_item(TableName=self.table, Item={
                **marker_key(recipe, build_id), "build": value(build_id),
                "since": value(now_iso())})

    # -- writes --------------------------------------------------------------------
    def announce(self, record: Mapping[str, Any]) -> bool:
        """Write the STARTING record of a build just started; False if it has one already.

        Called by whoever started the execution, right after StartExecution, so ``status``
        and ``history`` show the build before Resolve runs. Resolve may already have
        written BUILDING (it runs as soon as the execution starts): then this does nothing.
        """
        return self._put_new({**record, "status": STARTING})

    def start(self, record: Mapping[str, Any]) -> bool:
        """Create the BUILDING record, over the STARTING one if there is one; False if this
        build id is already past STARTING (a retried Resolve)."""
        return self._put_new({**record, "status": BUILDING}, over=STARTING)

    def _put_new(self, item: Mapping[str, Any], over: str | None = None) -> bool:
        item = {**item, "created_at": item.get("created_at") or now_iso(),
                "updated_at": now_iso()}
        if item.get("status") in IN_FLIGHT:  # the marker first: never a record without one
            self.mark_in_flight(item["recipe"], item["build_id"])
        kwargs: dict[str, Any] = {"TableName": self.table, "Item": serialize(item),
                                  "ConditionExpression": "attribute_not_exists(build_id)"}
        if over:
            kwargs["ConditionExpression"] += " OR #status = :over"
            kwargs["ExpressionAttributeNames"] = {"#status": "status"}
            kwargs["ExpressionAttributeValues"] = {":over": value(over)}
        try:
            with aws_call("PutItem"):
                self.db.put_item(**kwargs)
        except AwsCallFailed as err:
            if err.code == "ConditionalCheckFailedException":
                return False
            raise
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
            with aws_call("UpdateItem"):
                self.db.update_item(**kwargs)
        except AwsCallFailed as err:
            if err.code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def add_attempt(self, recipe: str, build_id: str, attempt: Mapping[str, Any]) -> bool:
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
                 "#t": "task_token", "#a": "approval_token"}
        values = {":c": value(CANCELLED), ":r": value(reason), ":now": value(now_iso())}
        values.update({f":l{i}": value(status) for i, status in enumerate(live)})
        try:
            with aws_call("UpdateItem"):
                self.db.update_item(
                    TableName=self.table,
                    Key={"recipe": value(recipe), "build_id": value(build_id)},
                    UpdateExpression="SET #s = :c, #r = :r, #f = :now, #u = :now "
                                     "REMOVE #t, #a",
                    ConditionExpression="attribute_exists(build_id) AND #s IN ("
                                        + ", ".join(f":l{i}" for i in range(len(live))) + ")",
                    ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        except AwsCallFailed as err:
            if err.code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def put_many(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Write records as they are, 25 per BatchWriteItem (imports, seeding); how many.

        No conditions: this is for filling an empty catalog, never for a live build. A
        record without ``created_at`` gets the time of writing (the ``history`` index
        orders by it), and an in-flight one its ``#in-flight`` marker.
        """
        count = 0
        batch: list[dict[str, Any]] = []
        for record in records:
            item = {**record, "created_at": record.get("created_at") or now_iso()}
            batch.append({"PutRequest": {"Item": serialize(item)}})
            if item.get("status") in IN_FLIGHT:
                batch.append({"PutRequest": {"Item": {
                    **marker_key(item["recipe"], item["build_id"]),
                    "build": value(item["build_id"]), "since": value(now_iso())}}})
            count += 1
            if len(batch) >= 24:
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
        finish: the failure path then records FAILED as for any failed build. Back in
        flight: the ``#in-flight`` marker first (the one write into flight that is not
        :meth:`_put_new`; ``update`` never sets an in-flight status otherwise)."""
        self.mark_in_flight(recipe, build_id)
        return self.update(recipe, build_id, only_if_status=AVAILABLE, status=BUILDING,
                           remove=("available_recipe", "finished_at"))

    def mark_failed(self, recipe: str, build_id: str, **fields: Any) -> bool:
        """FAILED from BUILDING, from STARTING (a build that failed in Resolve), or from
        AWAITING_APPROVAL (rejected, or the approval timed out)."""
        return self.update(recipe, build_id,
                           only_if_status=(STARTING, BUILDING, AWAITING_APPROVAL),
                           status=FAILED, finished_at=now_iso(),
                           remove=("task_token", "approval_token"), **fields)

    def record_failed(self, record: Mapping[str, Any]) -> bool:
        """A FAILED record for a build that has none (it died before any record was
        written: started, then its starter crashed, then Resolve failed)."""
        return self._put_new({**record, "status": FAILED, "finished_at": now_iso()})
