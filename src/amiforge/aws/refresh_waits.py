"""Builds waiting for their instance refreshes to end: one marker per refresh.

The AwaitRefresh task parks its task token here, in the catalog table's
``#refresh-waits`` partition (no recipe name can start with ``#``), one item per
instance refresh still running, keyed by what AWS's refresh events name::

    recipe = "#refresh-waits", build_id = "<region>#<group name>#<refresh id>",
    build_recipe, build, region, auto_scaling_group, refresh_id, task_token,
    rollout (the RollOut output, JSON), deadline_seconds, since

An "EC2 Auto Scaling Instance Refresh ..." event names a region, a group and a refresh
id: one GetItem finds the build waiting for that very refresh, or nothing (a group or a
refresh that is not ours). The refresh check reads the partition with one Query: its cost
follows the refreshes running *now*. Whoever answers a token removes every marker of that
wait. Nothing here decides anything: :mod:`amiforge.steps.refresh_wait` does.
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

REFRESH_WAITS_PARTITION = "#refresh-waits"


@dataclass(frozen=True)
class RefreshWait:
    recipe: str
    build_id: str
    region: str
    auto_scaling_group: str
    refresh_id: str
    token: str
    since: str
    deadline_seconds: int = 0   # the task's own timeout: past it nothing waits any more
    rollout: dict[str, Any] = field(default_factory=dict)  # RollOut's output

    @property
    def key(self) -> str:
        return marker_key(self.region, self.auto_scaling_group, self.refresh_id)


def marker_key(region: str, group: str, refresh_id: str) -> str:
    return f"{region}#{group}#{refresh_id}"


def _wait_of(item: dict[str, Any]) -> RefreshWait:
    record = deserialize(item)
    try:
        rollout = json.loads(str(record.get("rollout") or "{}"))
    except ValueError:
        rollout = {}
    try:
        deadline = int(record.get("deadline_seconds") or 0)
    except (TypeError, ValueError):
        deadline = 0
    return RefreshWait(recipe=str(record.get("build_recipe", "")),
                       build_id=str(record.get("build", "")),
                       region=str(record.get("region", "")),
                       auto_scaling_group=str(record.get("auto_scaling_group", "")),
                       refresh_id=str(record.get("refresh_id", "")),
                       token=str(record.get("task_token", "")),
                       since=str(record.get("since", "")), deadline_seconds=deadline,
                       rollout=rollout if isinstance(rollout, dict) else {})


class RefreshWaitList:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self.db = dynamodb
        self.table = table

    def add(self, wait: RefreshWait) -> None:
        item = {"recipe": REFRESH_WAITS_PARTITION, "build_id": wait.key,
                "build_recipe": wait.recipe, "build": wait.build_id, "region": wait.region,
                "auto_scaling_group": wait.auto_scaling_group, "refresh_id": wait.refresh_id,
                "task_token": wait.token, "rollout": json.dumps(wait.rollout),
                "deadline_seconds": wait.deadline_seconds, "since": wait.since or now_iso()}
        with aws_call("PutItem"):
            self.db.put_item(TableName=self.table, Item=serialize(item))

    def get(self, region: str, group: str, refresh_id: str) -> RefreshWait | None:
        with aws_call("GetItem"):
            item = self.db.get_item(TableName=self.table, ConsistentRead=True, Key={
                "recipe": value(REFRESH_WAITS_PARTITION),
                "build_id": value(marker_key(region, group, refresh_id))}).get("Item")
        return _wait_of(item) if item else None

    def remove(self, key: str, token: str) -> bool:
        """Remove the marker if it still holds ``token`` (a retried task may have parked
        a new token under the same key, and that one still waits). False if it did not."""
        return remove_if_token(self.db, self.table, REFRESH_WAITS_PARTITION, key, token)

    def all(self) -> Iterator[RefreshWait]:
        for item in partition_items(self.db, self.table, REFRESH_WAITS_PARTITION):
            yield _wait_of(item)
