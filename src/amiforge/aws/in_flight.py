"""The catalog's in-flight markers: what the sweeper and ``status`` read instead of the
history.

One marker item per build that entered STARTING or BUILDING, in the catalog table's
``#in-flight`` partition (``build_id = "<recipe>#<build id>"``), written by
:class:`~amiforge.aws.catalog.Catalog` *before* the record, so no in-flight record is
ever without its marker (an AWAITING_APPROVAL build has been BUILDING). A marker is not
removed when its build ends (that would add a write, and an IAM grant, to every step
that ends a build): :meth:`InFlight.live` drops the markers of ended builds as it meets
them, so the partition holds the builds in flight plus those that ended since the last
sweep, and reads stay bounded by them, never by the history.

Records written before markers existed: ``amiforge deploy`` writes one for each record
still in flight, once per table (:meth:`InFlight.backfill`: one Scan, remembered by the
``#in-flight``/``#backfilled`` item).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from amiforge.aws.catalog import IN_FLIGHT_PARTITION, Catalog, marker_key, now_iso
from amiforge.aws.dynamo import deserialize, serialize, value
from amiforge.aws.errors import aws_call
from amiforge.core.records import BuildRecord
from amiforge.core.statuses import IN_FLIGHT, BuildStatus

_BACKFILLED = "#backfilled"
# A marker whose build never got a record (its starter died between the two writes) is
# dropped after this long; a live announce writes its record within milliseconds.
_ORPHAN_MARKER_AGE = timedelta(days=1)


class InFlight:
    """The builds in flight of one catalog, read through their markers."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def live(self, recipe: str) -> list[BuildRecord]:
        """The builds of ``recipe`` whose record is in flight (STARTING, BUILDING or
        AWAITING_APPROVAL: core/statuses.py ``IN_FLIGHT``), newest first: the
        recipe's ``#in-flight`` markers and their records. Markers of builds that ended are
        deleted on the way (bookkeeping only: no record changes)."""
        markers = [deserialize(i) for i in self.catalog.query(
            KeyConditionExpression="recipe = :p AND begins_with(build_id, :r)",
            ExpressionAttributeValues={":p": value(IN_FLIGHT_PARTITION),
                                       ":r": value(f"{recipe}#")})]
        records = self.catalog.get_many((recipe, m["build"]) for m in markers)
        live: list[BuildRecord] = []
        orphan_before = (datetime.now(UTC) - _ORPHAN_MARKER_AGE).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ")
        for marker in markers:
            record = records.get((recipe, marker["build"]))
            if record is not None and record.get("status") in IN_FLIGHT:
                live.append(record)
            elif record is not None or str(marker.get("since", "")) < orphan_before:
                with aws_call("DeleteItem"):
                    self.catalog.db.delete_item(TableName=self.catalog.table,
                                        Key=marker_key(recipe, marker["build"]))
        live.sort(key=lambda r: r.get("created_at", ""), reverse=True)
        return live

    def awaiting_approval(self, recipe: str) -> list[BuildRecord]:
        """The builds of ``recipe`` whose record is AWAITING_APPROVAL, oldest first: read
        through the ``#in-flight`` markers (every such build has one: it entered flight
        as STARTING), so the cost follows the builds in flight, never the history. Read
        only: unlike :meth:`live` it deletes no marker."""
        markers = [deserialize(i) for i in self.catalog.query(
            KeyConditionExpression="recipe = :p AND begins_with(build_id, :r)",
            ExpressionAttributeValues={":p": value(IN_FLIGHT_PARTITION),
                                       ":r": value(f"{recipe}#")})]
        records = self.catalog.get_many((recipe, m["build"]) for m in markers if m.get("build"))
        waiting = [r for r in records.values() if r.get("status") == BuildStatus.AWAITING_APPROVAL]
        waiting.sort(key=lambda r: r.get("created_at", ""))
        return waiting

    def backfill(self) -> int:
        """Write the ``#in-flight`` marker of every STARTING or BUILDING record that has
        none (records written before markers existed); once per table: a second call reads
        one item. Returns how many markers were written."""
        with aws_call("GetItem"):
            done = self.catalog.db.get_item(TableName=self.catalog.table, ConsistentRead=True, Key={
                "recipe": value(IN_FLIGHT_PARTITION), "build_id": value(_BACKFILLED)},
            ).get("Item")
        if done:
            return 0
        count = 0
        for record in self.catalog.all_builds():
            if record.get("status") in IN_FLIGHT:
                self.catalog.mark_in_flight(record["recipe"], record["build_id"])
                count += 1
        with aws_call("PutItem"):
            self.catalog.db.put_item(TableName=self.catalog.table, Item=serialize(
                {"recipe": IN_FLIGHT_PARTITION, "build_id": _BACKFILLED, "at": now_iso()}))
        return count
