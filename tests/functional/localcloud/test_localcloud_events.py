"""EventBridge in the local cloud: targets, input shaping, disabled rules, schedules."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from amiforge.localcloud.events import json_path, render_input, render_template
from amiforge.localcloud.schedules import Cron, rate_seconds
from amiforge.localcloud.testing import create_function, receive_all, wait_for

RECORD = """
    import json, os, uuid
    def handler(event, context):
        path = os.path.join(os.environ["OUT_DIR"], uuid.uuid4().hex)
        with open(path + ".tmp", "w") as out:  # whole, then visible: the test polls
            json.dump(event, out)
        os.replace(path + ".tmp", path + ".json")
    """

EVENT = {
    "version": "0", "id": "e-1", "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2", "account": "123456789012", "time": "2024-05-01T10:00:00Z",
    "region": "us-east-1", "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-1"],
    "detail": {"instance-id": "i-1", "state": "stopped"},
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def clients(local_cloud: Any) -> dict[str, Any]:
    return {name: boto3.client(name) for name in
            ("lambda", "iam", "events", "sqs", "stepfunctions")}


def recorded(directory: Path, count: int, timeout: float = 15) -> list[Any]:
    wait_for(lambda: len(list(directory.glob("*.json"))) >= count, timeout,
             what=f"{count} invocations recorded in {directory}")
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]


def queue(sqs: Any) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=unique("events"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    return url, arn


# -- input shaping, as pure functions ---------------------------------------------------

def test_json_path_and_templates_follow_aws_rules() -> None:
    assert json_path(EVENT, "$.detail.instance-id") == "i-1"
    assert json_path(EVENT, "$.resources[0]").endswith("instance/i-1")
    assert json_path(EVENT, "$['detail-type']") == EVENT["detail-type"]
    values = {"id": "i-1", "n": 3, "detail": {"a": 1}}
    assert render_template('{"instance": <id>, "count": <n>, "d": <detail>}', values) == \
        '{"instance": "i-1", "count": 3, "d": {"a": 1}}'
    assert render_template('"<id> has <n> volumes"', values) == '"i-1 has 3 volumes"'
    target = {"InputTransformer": {"InputPathsMap": {"missing": "$.detail.nope"},
                                   "InputTemplate": '{"m": <missing>, "rule": "<aws.events.rule-name>"}'}}
    assert json.loads(render_input(target, EVENT, "arn:rule", "my-rule")) == {
        "m": None, "rule": "my-rule"}
    assert render_input({"Input": '{"fixed": true}'}, EVENT, "", "") == '{"fixed": true}'
    assert json.loads(render_input({"InputPath": "$.detail"}, EVENT, "", "")) == EVENT["detail"]


def test_schedule_expressions_parse() -> None:
    assert rate_seconds("rate(1 hour)") == 3600
    assert rate_seconds("rate(5 minutes)") == 300
    assert rate_seconds("cron(0 * * * ? *)") is None
    every_five = Cron.parse("cron(0/5 8-17 ? * MON-FRI *)")
    assert every_five is not None
    assert every_five.matches(datetime(2024, 5, 1, 9, 35, tzinfo=UTC))      # a Wednesday
    assert not every_five.matches(datetime(2024, 5, 1, 9, 36, tzinfo=UTC))
    assert not every_five.matches(datetime(2024, 5, 4, 9, 35, tzinfo=UTC))  # a Saturday
    with pytest.raises(ValueError, match="L, W and # are not supported"):
        Cron.parse("cron(0 0 L * ? *)")
    with pytest.raises(ValueError, match="6 fields"):
        Cron.parse("cron(0 0 * *)")


# -- delivery ---------------------------------------------------------------------------

def test_put_events_reaches_lambda_sqs_and_skips_disabled_rules(
        clients: dict[str, Any], tmp_path: Path) -> None:
    events, sqs = clients["events"], clients["sqs"]
    fn = create_function(clients["lambda"], clients["iam"], unique("record"), RECORD,
                         env={"OUT_DIR": str(tmp_path)})
    url, queue_arn = queue(sqs)
    source = unique("amiforge.test")
    pattern = json.dumps({"source": [source], "detail": {"state": ["stopped"]}})
    rule = unique("rule")
    events.put_rule(Name=rule, EventPattern=pattern)
    events.put_targets(Rule=rule, Targets=[
        {"Id": "fn", "Arn": fn, "InputPath": "$.detail"},
        {"Id": "q-whole", "Arn": queue_arn},
        {"Id": "q-text", "Arn": queue_arn, "InputTransformer": {
            "InputPathsMap": {"id": "$.detail.instance-id"},
            "InputTemplate": '"instance <id> stopped"'}},
        {"Id": "q-fixed", "Arn": queue_arn, "Input": '{"fixed": true}'},
    ])
    disabled = unique("disabled")
    events.put_rule(Name=disabled, EventPattern=pattern, State="DISABLED")
    events.put_targets(Rule=disabled, Targets=[{"Id": "q", "Arn": queue_arn}])
    daily = unique("daily")  # a schedule rule has no pattern: it must not match events
    events.put_rule(Name=daily, ScheduleExpression="rate(1 day)")
    events.put_targets(Rule=daily, Targets=[{"Id": "q", "Arn": queue_arn}])

    entries = events.put_events(Entries=[
        {"Source": source, "DetailType": "Thing", "Resources": ["arn:x"],
         "Detail": json.dumps({"instance-id": "i-9", "state": "stopped"})},
        {"Source": source, "DetailType": "Thing",
         "Detail": json.dumps({"instance-id": "i-8", "state": "running"})},
    ])["Entries"]

    assert all("EventId" in e for e in entries)
    assert recorded(tmp_path, 1) == [{"instance-id": "i-9", "state": "stopped"}]
    bodies = receive_all(sqs, url, 3)
    time.sleep(0.3)  # nothing more arrives (disabled rule, schedule rule, running event)
    assert sqs.receive_message(QueueUrl=url).get("Messages") is None
    whole = next(b for b in bodies if isinstance(b, dict) and "detail" in b)
    assert whole["source"] == source and whole["detail-type"] == "Thing"
    assert whole["resources"] == ["arn:x"]
    assert whole["time"].endswith("Z") and "ingestion-time" not in whole
    assert "instance i-9 stopped" in bodies
    assert {"fixed": True} in bodies


def test_state_machine_target_gets_an_execution(clients: dict[str, Any]) -> None:
    sfn, events = clients["stepfunctions"], clients["events"]
    machine = sfn.create_state_machine(
        name=unique("on-event"), roleArn="arn:aws:iam::123456789012:role/states",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass",
                                                                "End": True}}}),
    )["stateMachineArn"]
    source = unique("amiforge.test")
    rule = unique("to-sfn")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": [source]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "sm", "Arn": machine,
                                            "InputPath": "$.detail"}])

    events.put_events(Entries=[{"Source": source, "DetailType": "Go",
                                "Detail": json.dumps({"recipe": "web"})}])

    execution = wait_for(lambda: sfn.list_executions(stateMachineArn=machine)["executions"],
                         what="an execution")[0]
    described = wait_for(lambda: (d := sfn.describe_execution(
        executionArn=execution["executionArn"]))["status"] == "SUCCEEDED" and d,
        what="the execution to succeed")
    assert json.loads(described["input"]) == {"recipe": "web"}


# -- schedules --------------------------------------------------------------------------

@pytest.fixture
def fast_clock(local_cloud: Any) -> Iterator[Any]:
    before = local_cloud.time_scale
    local_cloud.time_scale = 3600  # an emulated hour per real second
    yield local_cloud
    local_cloud.time_scale = before


def test_rate_schedule_fires_lambda_and_state_machine_targets(
        clients: dict[str, Any], fast_clock: Any, tmp_path: Path) -> None:
    events, sfn = clients["events"], clients["stepfunctions"]
    fn = create_function(clients["lambda"], clients["iam"], unique("tick"), RECORD,
                         env={"OUT_DIR": str(tmp_path)})
    machine = sfn.create_state_machine(
        name=unique("scheduled"), roleArn="arn:aws:iam::123456789012:role/states",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass",
                                                                "End": True}}}),
    )["stateMachineArn"]
    rule = unique("hourly")
    rule_arn = events.put_rule(Name=rule, ScheduleExpression="rate(1 hour)")["RuleArn"]
    events.put_targets(Rule=rule, Targets=[{"Id": "fn", "Arn": fn},
                                           {"Id": "sm", "Arn": machine}])

    first = recorded(tmp_path, 1, timeout=10)[0]
    executions = wait_for(lambda: sfn.list_executions(stateMachineArn=machine)["executions"],
                          timeout=10, what="a scheduled execution")
    events.disable_rule(Name=rule)

    assert first["source"] == "aws.events"
    assert first["detail-type"] == "Scheduled Event"
    assert first["resources"] == [rule_arn]
    assert first["detail"] == {}
    assert executions[0]["status"] in ("RUNNING", "SUCCEEDED")


def test_cron_schedule_fires_on_the_scaled_clock(
        clients: dict[str, Any], fast_clock: Any, tmp_path: Path) -> None:
    events, sqs = clients["events"], clients["sqs"]
    url, queue_arn = queue(sqs)
    rule = unique("cron")
    # Every 10 emulated minutes: at 3600x that is every ~0.17 real seconds.
    events.put_rule(Name=rule, ScheduleExpression="cron(0/10 * * * ? *)")
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": queue_arn}])

    bodies = receive_all(sqs, url, 2, timeout=10)
    events.remove_targets(Rule=rule, Ids=["q"])
    events.delete_rule(Name=rule)

    assert all(b["detail-type"] == "Scheduled Event" for b in bodies)
