"""The stop check, the fallback that resumes builds whose stop event was lost, on the
local cloud: real ``#waiting`` markers in a catalog table, real (simulated) builders, and
real executions waiting on their task tokens.

Replaces tests/unit/steps/test_stop_check.py (FakeDynamo, FakeEc2, FakeSfn): the same
three behaviours, counted with botocore's own call events instead of fake counters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.helpers import (
    CallCounter,
    TaskTokens,
    create_tables,
    raw_builder,
    seed,
    stack_resources,
    wait_state,
)

from amiforge.aws.dynamo import value
from amiforge.aws.session import AwsContext
from amiforge.aws.waits import WAITING_PARTITION, WaitingList, marker_key
from amiforge.steps.env import StepEnv
from amiforge.steps.stop_check import check_waiting
from amiforge.steps.wait_stop import on_instance_state

HANG = "#!/bin/bash\n# amiforge-sim: hang\n"
NEVER_LAUNCHED = "i-0123456789abcdef0"  # an id EC2 does not know
HOME = "ca-central-1"


@pytest.fixture(scope="module")
def aws(local_cloud: Any) -> AwsContext:
    """A home region of the module's own: the check lists every builder of the region
    (one page of DescribeInstances here; the other modules' builders would add pages)."""
    return AwsContext(region=HOME, endpoint_url=local_cloud.endpoint)


@pytest.fixture(scope="module")
def stack(aws: AwsContext) -> StepEnv:
    return stack_resources(aws)


@pytest.fixture(scope="module")
def tokens(aws: AwsContext) -> Iterator[TaskTokens]:
    machine = TaskTokens(aws)
    yield machine
    machine.close()


@pytest.fixture
def env(stack: StepEnv) -> StepEnv:
    """A catalog of this test's own: the markers are one partition of it."""
    catalog, recipes = create_tables(stack.client("dynamodb"))
    return dataclasses.replace(stack, catalog_table=catalog, recipes_table=recipes)


def wait_on(env: StepEnv, build: str, instance: str, token: str,
            age: timedelta = timedelta(0)) -> None:
    """As AwaitStop leaves a build: the token on its record and a ``#waiting`` marker."""
    seed(env, {"recipe": "web", "build_id": build, "status": "BUILDING",
               "instance_id": instance, "task_token": token})
    WaitingList(env.client("dynamodb"), env.catalog_table).add(
        recipe="web", build_id=build, instance_id=instance, token=token)
    since = (datetime.now(UTC) - age).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    env.client("dynamodb").update_item(
        TableName=env.catalog_table, UpdateExpression="SET since = :s",
        Key={"recipe": value(WAITING_PARTITION), "build_id": value(marker_key(build, instance))},
        ExpressionAttributeValues={":s": value(since)})


def markers(env: StepEnv) -> list[str]:
    return sorted(w.build_id for w in WaitingList(env.client("dynamodb"),
                                                   env.catalog_table).all())


def stopped_builder(env: StepEnv, build: str) -> str:
    instance = raw_builder(env, "web", build, "#!/bin/bash\necho done\n")
    wait_state(env, instance, "stopped")
    return instance


def test_nothing_waiting_costs_one_query(env: StepEnv) -> None:
    with CallCounter(env.client("dynamodb")) as dynamodb, CallCounter(env.client("ec2")) as ec2:
        report = check_waiting(env)
    assert report == {"check": "waiting", "waiting": 0, "resumed": [], "cleared": 0,
                      "running": 0, "errors": 0, "claimed_elsewhere": 0}
    assert dynamodb.calls == {"Query": 1}
    assert ec2.calls == {}


def test_stopped_builders_are_resumed_running_ones_left_alone(env: StepEnv,
                                                              tokens: TaskTokens) -> None:
    executions = {}
    for build, instance in (("b-stopped", stopped_builder(env, "b-stopped")),
                            ("b-running", raw_builder(env, "web", "b-running", HANG)),
                            ("b-answered", stopped_builder(env, "b-answered")),
                            ("b-young", NEVER_LAUNCHED)):
        executions[build], token = tokens.wait()
        wait_on(env, build, instance, token)
        if build == "b-answered":  # its event did arrive meanwhile
            env.client("stepfunctions").send_task_success(taskToken=token, output="{}")
    executions["b-forgotten"], token = tokens.wait()
    wait_on(env, "b-forgotten", "i-0fedcba9876543210", token, age=timedelta(hours=2))
    with CallCounter(env.client("ec2")) as ec2:
        report = on_instance_state({"check": "waiting"}, env)

    assert sorted(report["resumed"]) == ["b-forgotten", "b-stopped"]
    assert (report["cleared"], report["running"], report["waiting"]) == (1, 2, 5)
    assert tokens.outcome(executions["b-stopped"]) == (
        "SUCCEEDED", {"state": "stopped", "source": "schedule"})
    assert tokens.outcome(executions["b-forgotten"]) == (
        "SUCCEEDED", {"state": "terminated", "source": "schedule"})
    assert tokens.status(executions["b-running"]) == "RUNNING"
    assert tokens.status(executions["b-young"]) == "RUNNING"
    assert markers(env) == ["b-running", "b-young"]
    assert ec2.calls == {"DescribeInstances": 1}  # one for every waiting build


def test_one_failing_marker_does_not_stop_the_others(
        env: StepEnv, tokens: TaskTokens, caplog: pytest.LogCaptureFixture) -> None:
    executions = {}
    for build in ("b-1", "b-broken", "b-3"):
        instance = stopped_builder(env, build)
        executions[build], token = tokens.wait()
        # A marker written wrong (no token): SendTaskSuccess cannot even be asked.
        wait_on(env, build, instance, "" if build == "b-broken" else token)

    with caplog.at_level("ERROR", logger="amiforge.steps.stop_check"):
        report = check_waiting(env)

    assert sorted(report["resumed"]) == ["b-1", "b-3"]
    assert (report["errors"], report["cleared"], report["waiting"]) == (1, 0, 3)
    assert [tokens.outcome(executions[b])[0] for b in ("b-1", "b-3")] == ["SUCCEEDED"] * 2
    # The failed marker stays, so the next check tries it again.
    assert markers(env) == ["b-broken"]
    assert "b-broken" in " ".join(r.getMessage() for r in caplog.records)
