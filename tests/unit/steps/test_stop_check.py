"""The stop check: the fallback that resumes builds whose stop event was lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from amiforge.aws.session import AwsContext
from amiforge.aws.waits import WAITING_PARTITION, WaitingList
from amiforge.steps.env import StepEnv
from amiforge.steps.stop_check import check_waiting
from amiforge.steps.wait_stop import on_instance_state


class FakeDynamo:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def put_item(self, *, TableName: str, Item: dict) -> None:  # noqa: N803
        assert Item["recipe"] == {"S": WAITING_PARTITION}
        self.items[Item["build_id"]["S"]] = Item

    def delete_item(self, *, TableName: str, Key: dict) -> None:  # noqa: N803
        self.items.pop(Key["build_id"]["S"], None)

    def query(self, **kwargs: Any) -> dict:
        assert kwargs["ExpressionAttributeValues"] == {":w": {"S": WAITING_PARTITION}}
        return {"Items": list(self.items.values())}


class FakeEc2:
    def __init__(self, states: dict[str, str]) -> None:
        self.states = states
        self.calls = 0

    def get_paginator(self, name: str) -> Any:
        assert name == "describe_instances"
        return self

    def paginate(self, Filters: list) -> Any:  # noqa: N803
        self.calls += 1
        assert {"Name": "tag:amiforge:role", "Values": ["builder", "tester"]} in Filters
        yield {"Reservations": [{"Instances": [
            {"InstanceId": i, "State": {"Name": s}} for i, s in self.states.items()]}]}


class FakeSfn:
    def __init__(self, gone: set[str], broken: dict[str, Exception] | None = None) -> None:
        self.gone = gone
        self.broken = broken or {}
        self.resumed: list[tuple[str, str]] = []

    def send_task_success(self, *, taskToken: str, output: str) -> None:  # noqa: N803
        if taskToken in self.broken:
            raise self.broken[taskToken]
        if taskToken in self.gone:
            raise ClientError({"Error": {"Code": "TaskTimedOut", "Message": "gone"}},
                              "SendTaskSuccess")
        self.resumed.append((taskToken, output))


def make_env(dynamo: FakeDynamo, ec2: FakeEc2, sfn: FakeSfn) -> StepEnv:
    aws = AwsContext(region="us-east-1")
    aws._clients.update({("dynamodb", "us-east-1"): dynamo, ("ec2", "us-east-1"): ec2,
                         ("stepfunctions", "us-east-1"): sfn})
    return StepEnv(catalog_table="catalog", recipes_table="recipes", aws=aws)


def wait_on(dynamo: FakeDynamo, build: str, instance: str, token: str,
            age: timedelta = timedelta(0)) -> None:
    WaitingList(dynamo, "catalog").add(recipe="web", build_id=build, instance_id=instance,
                                       token=token)
    since = (datetime.now(UTC) - age).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    dynamo.items[f"{build}#{instance}"]["since"] = {"S": since}


def test_nothing_waiting_costs_one_query() -> None:
    ec2 = FakeEc2({})
    report = check_waiting(make_env(FakeDynamo(), ec2, FakeSfn(set())))
    assert report == {"check": "waiting", "waiting": 0, "resumed": [], "cleared": 0,
                      "running": 0, "errors": 0}
    assert ec2.calls == 0


def test_stopped_builders_are_resumed_running_ones_left_alone() -> None:
    dynamo = FakeDynamo()
    wait_on(dynamo, "b-stopped", "i-1", "t1")
    wait_on(dynamo, "b-running", "i-2", "t2")
    wait_on(dynamo, "b-answered", "i-3", "t3")       # its event did arrive meanwhile
    wait_on(dynamo, "b-young", "i-4", "t4")          # not yet described (eventual consistency)
    wait_on(dynamo, "b-forgotten", "i-5", "t5", age=timedelta(hours=2))
    ec2 = FakeEc2({"i-1": "stopped", "i-2": "running", "i-3": "stopped"})
    sfn = FakeSfn(gone={"t3"})
    report = on_instance_state({"check": "waiting"}, make_env(dynamo, ec2, sfn))
    assert sorted(report["resumed"]) == ["b-forgotten", "b-stopped"]
    assert report["cleared"] == 1 and report["running"] == 2 and report["waiting"] == 5
    assert ('t1', '{"state": "stopped", "source": "schedule"}') in sfn.resumed
    assert ('t5', '{"state": "terminated", "source": "schedule"}') in sfn.resumed
    assert sorted(dynamo.items) == ["b-running#i-2", "b-young#i-4"]
    assert ec2.calls == 1  # one DescribeInstances for every waiting build


def test_one_failing_marker_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    dynamo = FakeDynamo()
    wait_on(dynamo, "b-1", "i-1", "t1")
    wait_on(dynamo, "b-broken", "i-2", "t2")
    wait_on(dynamo, "b-3", "i-3", "t3")
    wait_on(dynamo, "b-odd", "i-4", "t4")
    ec2 = FakeEc2({"i-1": "stopped", "i-2": "stopped", "i-3": "terminated", "i-4": "stopped"})
    sfn = FakeSfn(gone=set(), broken={
        "t2": ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}},
                          "SendTaskSuccess"),
        "t4": RuntimeError("something unexpected")})
    with caplog.at_level("ERROR", logger="amiforge.steps.stop_check"):
        report = check_waiting(make_env(dynamo, ec2, sfn))
    assert sorted(report["resumed"]) == ["b-1", "b-3"]
    assert report["errors"] == 2 and report["cleared"] == 0 and report["waiting"] == 4
    # The failed markers stay, so the next check tries them again.
    assert sorted(dynamo.items) == ["b-broken#i-2", "b-odd#i-4"]
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "b-broken" in logged and "b-odd" in logged
