"""Builds waiting for their builder to stop: one small marker item each, for the fallback.

The AwaitStop task parks its token on the build record, where the EC2 state-change
event finds it. A lost event would leave the build waiting until the recipe's timeout,
so the token is also noted in the catalog table's ``#waiting`` partition (no recipe name
can start with ``#``), one item per build attempt::

    recipe = "#waiting", build_id = "<build id>#<instance id>",
    build_recipe, build, instance_id, task_token, since

The scheduled stop check (:mod:`amiforge.steps.stop_check`) reads the partition with one
Query: its cost follows the number of builds waiting *now*, never the catalog's history.
A marker is removed by whoever resumes its build, and by the check once its token is
answered or gone, so the partition holds at most the builds in flight.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from amiforge.aws.catalog import now_iso
from amiforge.aws.dynamo import deserialize, serialize, value
from amiforge.aws.errors import aws_call
from amiforge.aws.markers import partition_items

WAITING_PARTITION = "#waiting"


@dataclass(frozen=True)
class Waiting:
    recipe: str
    build_id: str
    instance_id: str
    token: str
    since: str

    @property
    def key(self) -> str:
        return marker_key(self.build_id, self.instance_id)


def marker_key(build_id: str, instance_id: str) -> str:
    # Per attempt: a relaunch waits on another instance, so an old attempt's late
    # resumer can never remove the new attempt's marker.
    return f"{build_id}#{instance_id}"


class WaitingList:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self.db = dynamodb
        self.table = table

    def add(self, *, recipe: str, build_id: str, instance_id: str, token: str) -> None:
        item = {"recipe": WAITING_PARTITION, "build_id": marker_key(build_id, instance_id),
                "build_recipe": recipe, "build": build_id, "instance_id": instance_id,
                "task_token": token, "since": now_iso()}
        with aws_call("PutItem"):
            self.db.put_item(TableName=self.table, Item=serialize(item))

    def remove(self, build_id: str, instance_id: str) -> None:
        with aws_call("DeleteItem"):
            self.db.delete_item(TableName=self.table, Key={
                "recipe": value(WAITING_PARTITION),
                "build_id": value(marker_key(build_id, instance_id))})

    def all(self) -> Iterator[Waiting]:
        for item in partition_items(self.db, self.table, WAITING_PARTITION):
            record = deserialize(item)
            yield Waiting(recipe=record.get("build_recipe", ""),
                          build_id=record.get("build", ""),
                          instance_id=record.get("instance_id", ""),
                          token=record.get("task_token", ""), since=record.get("since", ""))
