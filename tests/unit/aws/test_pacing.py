"""The launch budget item: slots taken with compare-and-set, waited for, or refused."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from amiforge.aws.pacing import LIMITS_PARTITION, RUN_INSTANCES_KEY, LaunchThrottled, Pacer


class FakeTable:
    """get_item/update_item of one item, with the two condition forms Pacer uses."""

    def __init__(self) -> None:
        self.tat: str | None = None
        self.interfere: list[str] = []  # tat values a "concurrent launch" writes first
        self.writes = 0

    def get_item(self, *, TableName: str, Key: dict, ConsistentRead: bool) -> dict:  # noqa: N803
        assert Key == {"recipe": {"S": LIMITS_PARTITION}, "build_id": {"S": RUN_INSTANCES_KEY}}
        assert ConsistentRead
        return {"Item": {"tat": {"N": self.tat}}} if self.tat is not None else {}

    def update_item(self, *, ConditionExpression: str, ExpressionAttributeValues: dict,
                    **_: Any) -> None:  # noqa: N803
        if self.interfere:
            self.tat = self.interfere.pop(0)
        expected = ExpressionAttributeValues.get(":expected", {}).get("N")
        holds = (self.tat is None if ConditionExpression == "attribute_not_exists(tat)"
                 else self.tat is not None and float(self.tat) == float(expected))
        if not holds:
            raise ClientError({"Error": {"Code": "ConditionalCheckFailedException",
                                         "Message": "The conditional request failed"}},
                              "UpdateItem")
        self.tat = ExpressionAttributeValues[":tat"]["N"]
        self.writes += 1


def pacer(table: FakeTable, now: float = 1000.0, **kwargs: Any) -> tuple[Pacer, list[float]]:
    slept: list[float] = []
    return Pacer(table, "catalog", clock=lambda: now, sleep=slept.append, **kwargs), slept


def test_a_burst_goes_at_once_then_each_launch_waits_its_slot() -> None:
    table = FakeTable()
    p, slept = pacer(table, burst=4, per_second=2.0)
    waits = [p.take() for _ in range(6)]
    assert waits == pytest.approx([0, 0, 0, 0, 0.5, 1.0])
    assert slept == pytest.approx([0.5, 1.0])
    assert p.waited == pytest.approx(1.5)
    assert table.writes == 6


def test_a_slot_further_than_max_wait_is_refused_and_not_taken() -> None:
    table = FakeTable()
    p, _ = pacer(table, burst=1, per_second=1.0, max_wait=2.0)
    for _ in range(3):  # waits 0, 1, 2
        p.take()
    with pytest.raises(LaunchThrottled, match=r"budget \(1 burst, 1/s\) is spent for the next 3.0s"):
        p.take()
    assert table.writes == 3  # the refused launch reserved nothing


def test_a_lost_compare_and_set_reads_again() -> None:
    table = FakeTable()
    table.tat = "1000.0"
    table.interfere = ["1000.5"]  # another launch took a slot between our read and write
    p, slept = pacer(table, burst=1, per_second=2.0)
    assert p.take() == pytest.approx(0.5)  # the slot after the other launch's
    assert float(table.tat) == pytest.approx(1001.0)


def test_endless_contention_backs_off_through_the_state_machine() -> None:
    table = FakeTable()
    table.tat = "0"
    table.interfere = [str(float(i)) for i in range(1, 20)]
    p, _ = pacer(table)
    with pytest.raises(LaunchThrottled, match="contended"):
        p.take()


def test_the_hook_takes_a_slot_before_every_run_instances_request() -> None:
    table = FakeTable()
    p, _ = pacer(table, burst=5, per_second=2.0)
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    p.install(ec2)
    second, _ = pacer(table, burst=5, per_second=2.0)
    second.install(ec2)  # the next launch of a warm Lambda: one hook, the newest pacer
    ec2.meta.events.emit("before-send.ec2.RunInstances", request=None)
    ec2.meta.events.emit("before-send.ec2.DescribeInstances", request=None)
    assert table.writes == 1
