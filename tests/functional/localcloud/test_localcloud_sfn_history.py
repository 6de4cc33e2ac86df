"""GetExecutionHistory pages as on AWS: maxResults (0 or absent: 100), reverseOrder,
nextToken; a token not given for this execution and order is InvalidToken."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from amiforge.localcloud.testing import wait_for

ROLE = "arn:aws:iam::123456789012:role/amiforge-test-states"
PASSES = 60  # ExecutionStarted, 120 Pass events and WaitStateEntered: over one page


@pytest.fixture()
def waiting(local_cloud: Any) -> Iterator[tuple[Any, str]]:
    """(client, ARN of an execution parked in a Wait after PASSES Pass states)."""
    names = [f"Step{i}" for i in range(PASSES)]
    states: dict[str, Any] = {name: {"Type": "Pass", "Next": after}
                              for name, after in zip(names, [*names[1:], "Wait"], strict=True)}
    states["Wait"] = {"Type": "Wait", "Seconds": 600, "End": True}
    sfn = boto3.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"pages-{uuid.uuid4().hex[:8]}", roleArn=ROLE,
        definition=json.dumps({"StartAt": names[0], "States": states}))["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    wait_for(lambda: any(e.get("stateEnteredEventDetails", {}).get("name") == "Wait"
                         for e in everything(sfn, arn)), timeout=30, what="the Wait")
    yield sfn, arn
    sfn.stop_execution(executionArn=arn)


def everything(sfn: Any, arn: str, **params: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token = None
    while True:
        page = sfn.get_execution_history(executionArn=arn, **params,
                                         **({"nextToken": token} if token else {}))
        events.extend(page["events"])
        token = page.get("nextToken")
        if not token:
            return events


def test_pages_hold_max_results_and_follow_on_in_order(waiting: tuple[Any, str]) -> None:
    sfn, arn = waiting
    first = sfn.get_execution_history(executionArn=arn)
    assert len(first["events"]) == 100 and first["nextToken"]  # the default page
    ids = [e["id"] for e in everything(sfn, arn)]
    assert ids == sorted(ids) and len(ids) == 1 + 2 * PASSES + 1
    assert [e["id"] for e in everything(sfn, arn, maxResults=7)] == ids
    assert [e["id"] for e in everything(sfn, arn, maxResults=0)] == ids
    newest = sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=3)
    assert [e["id"] for e in newest["events"]] == ids[::-1][:3]
    assert newest["events"][0]["stateEnteredEventDetails"]["name"] == "Wait"
    assert [e["id"] for e in everything(sfn, arn, reverseOrder=True, maxResults=50)] == \
        ids[::-1]
    last = sfn.get_execution_history(executionArn=arn, maxResults=1000)
    assert len(last["events"]) == len(ids) and "nextToken" not in last


@pytest.mark.parametrize("reuse", ["garbage", "other order", "other execution"])
def test_a_token_not_given_for_this_execution_and_order_is_refused(
        waiting: tuple[Any, str], reuse: str) -> None:
    sfn, arn = waiting
    token = sfn.get_execution_history(executionArn=arn, maxResults=2)["nextToken"]
    params: dict[str, Any] = {"executionArn": arn, "nextToken": token}
    if reuse == "garbage":
        params["nextToken"] = "not-a-token!"
    elif reuse == "other order":
        params["reverseOrder"] = True
    else:
        params["executionArn"] = arn + "-other"
    with pytest.raises(ClientError) as caught:
        sfn.get_execution_history(**params)
    assert caught.value.response["Error"]["Code"] in (
        ("ExecutionDoesNotExist",) if reuse == "other execution" else ("InvalidToken",))
