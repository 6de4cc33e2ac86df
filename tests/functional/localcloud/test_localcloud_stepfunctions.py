"""Step Functions runs real ASL over local Lambdas: Retry, Catch, Choice, Wait, timeouts,
and a .waitForTaskToken task resumed by EventBridge from the simulated builder's stop."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from amiforge.localcloud.testing import create_function, lambda_role, wait_for

ROLE = "arn:aws:iam::123456789012:role/amiforge-test-states"

WORK = """
    import os

    class TransientAwsError(Exception):
        pass

    class BuildFailed(Exception):
        pass

    def handler(event, context):
        counter = os.path.join(os.environ["COUNTER_DIR"], event["id"])
        attempts = int(open(counter).read()) if os.path.exists(counter) else 0
        with open(counter, "w") as out:
            out.write(str(attempts + 1))
        if attempts < event.get("transient_failures", 0):
            raise TransientAwsError(f"throttled on attempt {attempts + 1}")
        if event.get("fail"):
            raise BuildFailed("recipe web: failure exit=1")
        return {"result": event.get("result", "ok"), "attempts": attempts + 1}
    """


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def clients(local_cloud: Any) -> dict[str, Any]:
    return {name: boto3.client(name) for name in
            ("lambda", "iam", "stepfunctions", "events", "ec2", "dynamodb")}


def wait_done(sfn: Any, execution_arn: str, timeout: float = 30) -> dict:
    def finished() -> dict | None:
        described = sfn.describe_execution(executionArn=execution_arn)
        return described if described["status"] != "RUNNING" else None

    return wait_for(finished, timeout, interval=0.1, what=f"execution {execution_arn}")


def failure_of(sfn: Any, execution_arn: str) -> dict:
    history = sfn.get_execution_history(executionArn=execution_arn)["events"]
    failed = [e for e in history if e["type"] == "ExecutionFailed"]
    return failed[-1]["executionFailedEventDetails"] if failed else {}


def test_retry_catch_choice_and_wait(clients: dict[str, Any], tmp_path: Path) -> None:
    sfn = clients["stepfunctions"]
    work = create_function(clients["lambda"], clients["iam"], unique("work"), WORK,
                           env={"COUNTER_DIR": str(tmp_path)})
    definition = {
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task", "Resource": work, "ResultPath": "$.work",
                "Retry": [{"ErrorEquals": ["TransientAwsError"], "IntervalSeconds": 1,
                           "MaxAttempts": 2, "BackoffRate": 1.0}],
                "Catch": [{"ErrorEquals": ["BuildFailed"], "ResultPath": "$.error",
                           "Next": "BuildFailed"}],
                "Next": "Pause",
            },
            "Pause": {"Type": "Wait", "SecondsPath": "$.pause", "Next": "Decide"},
            "Decide": {"Type": "Choice",
                       "Choices": [{"Variable": "$.work.result", "StringEquals": "ok",
                                    "Next": "Done"}],
                       "Default": "Unexpected"},
            "Done": {"Type": "Succeed"},
            "BuildFailed": {"Type": "Fail", "Error": "BuildFailed",
                            "Cause": "the build reported failure"},
            "Unexpected": {"Type": "Fail", "Error": "UnexpectedResult", "Cause": "not ok"},
        },
    }
    machine = sfn.create_state_machine(name=unique("pipeline"), roleArn=ROLE,
                                       definition=json.dumps(definition))["stateMachineArn"]
    inputs = {
        "retried": {"id": "a", "transient_failures": 1, "pause": 1},
        "caught": {"id": "b", "fail": True, "pause": 0},
        "chosen": {"id": "c", "result": "odd", "pause": 0},
        "exhausted": {"id": "d", "transient_failures": 5, "pause": 0},
    }
    started = time.monotonic()
    arns = {case: sfn.start_execution(stateMachineArn=machine, name=f"{case}-{uuid.uuid4().hex[:6]}",
                                      input=json.dumps(data))["executionArn"]
            for case, data in inputs.items()}

    results = {case: wait_done(sfn, arn) for case, arn in arns.items()}

    assert results["retried"]["status"] == "SUCCEEDED"
    assert json.loads(results["retried"]["output"])["work"] == {"result": "ok", "attempts": 2}
    assert time.monotonic() - started >= 2  # a 1 s retry interval, then a 1 s Wait
    assert results["caught"]["status"] == "FAILED"
    assert failure_of(sfn, arns["caught"])["error"] == "BuildFailed"
    assert results["chosen"]["status"] == "FAILED"
    assert failure_of(sfn, arns["chosen"])["error"] == "UnexpectedResult"
    assert results["exhausted"]["status"] == "FAILED"
    exhausted = failure_of(sfn, arns["exhausted"])
    assert exhausted["error"] == "TransientAwsError"
    assert "throttled on attempt 3" in exhausted["cause"]
    assert (tmp_path / "d").read_text() == "3"  # the first try and 2 retries


STORE_TOKEN = """
    import boto3
    table = boto3.resource("dynamodb").Table(__import__("os").environ["TABLE"])
    def handler(event, context):
        table.put_item(Item={"instance_id": event["instance_id"], "token": event["token"]})
        return {"stored": event["instance_id"]}
    """

LAUNCH = """
    import boto3
    ec2 = boto3.client("ec2")
    def handler(event, context):
        reservation = ec2.run_instances(
            ImageId=event["image_id"], MinCount=1, MaxCount=1, InstanceType="t3.small",
            UserData=event["user_data"], InstanceInitiatedShutdownBehavior="stop",
            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": "amiforge:role", "Value": "builder"},
                {"Key": "amiforge:recipe", "Value": event["recipe"]}]}])
        return reservation["Instances"][0]["InstanceId"]
    """

ON_STOPPED = """
    import json, os, time, boto3
    table = boto3.resource("dynamodb").Table(os.environ["TABLE"])
    sfn = boto3.client("stepfunctions")
    def handler(event, context):
        # The stop can race the task that stores the token: wait for it a little.
        for _ in range(100):
            item = table.get_item(Key={"instance_id": event["instance_id"]}).get("Item")
            if item:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("no task token for " + event["instance_id"])
        sfn.send_task_success(taskToken=item["token"], output=json.dumps(
            {"instance_id": event["instance_id"], "state": event["state"]}))
        return "resumed"
    """


def test_wait_for_task_token_resumed_by_the_builder_stop_event(
        clients: dict[str, Any]) -> None:
    sfn, lam, iam = clients["stepfunctions"], clients["lambda"], clients["iam"]
    table = unique("tokens")
    clients["dynamodb"].create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "instance_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "instance_id", "KeyType": "HASH"}])
    env = {"TABLE": table}
    launch = create_function(lam, iam, unique("launch"), LAUNCH, env=env)
    store = create_function(lam, iam, unique("store"), STORE_TOKEN, env=env)
    on_stopped = create_function(lam, iam, unique("on-stopped"), ON_STOPPED, env=env,
                                 timeout=30)
    rule = unique("builder-stopped")
    clients["events"].put_rule(Name=rule, EventPattern=json.dumps({
        "source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"],
        "detail": {"state": ["stopped"]}}))
    clients["events"].put_targets(Rule=rule, Targets=[{
        "Id": "on-stopped", "Arn": on_stopped,
        "InputTransformer": {
            "InputPathsMap": {"id": "$.detail.instance-id", "state": "$.detail.state"},
            "InputTemplate": '{"instance_id": <id>, "state": <state>}'}}])
    definition = {
        "StartAt": "Launch",
        "States": {
            "Launch": {"Type": "Task", "Resource": launch, "ResultPath": "$.instance_id",
                       "Next": "AwaitStop"},
            "AwaitStop": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": store, "Payload": {
                    "token.$": "$$.Task.Token", "instance_id.$": "$.instance_id"}},
                "TimeoutSecondsPath": "$.timeout_seconds",
                "ResultPath": "$.stopped",
                "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error",
                           "Next": "NeverStopped"}],
                "Next": "Done"},
            "Done": {"Type": "Succeed"},
            "NeverStopped": {"Type": "Fail", "Error": "BuildTimedOut",
                             "Cause": "the builder never stopped"},
        },
    }
    machine = sfn.create_state_machine(name=unique("await"), roleArn=ROLE,
                                       definition=json.dumps(definition))["stateMachineArn"]
    image_id = boto3.client("ssm").get_parameter(
        Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"
    )["Parameter"]["Value"]

    def start(script: str, timeout: int) -> str:
        return sfn.start_execution(stateMachineArn=machine, input=json.dumps({
            "image_id": image_id, "user_data": script, "recipe": unique("recipe"),
            "timeout_seconds": timeout}))["executionArn"]

    ok = start("#!/bin/bash\necho building\n", 60)
    hung = start("#!/bin/bash\n# amiforge-sim: hang\nsleep infinity\n", 2)

    done = wait_done(sfn, ok, timeout=40)
    timed_out = wait_done(sfn, hung, timeout=40)

    assert done["status"] == "SUCCEEDED", failure_of(sfn, ok)
    output = json.loads(done["output"])
    assert output["stopped"] == {"instance_id": output["instance_id"], "state": "stopped"}
    instance = clients["ec2"].describe_instances(InstanceIds=[output["instance_id"]])
    assert instance["Reservations"][0]["Instances"][0]["State"]["Name"] == "stopped"
    assert timed_out["status"] == "FAILED"
    assert failure_of(sfn, hung)["error"] == "BuildTimedOut"


def test_timeout_seconds_path_times_out_a_task(clients: dict[str, Any]) -> None:
    sfn = clients["stepfunctions"]
    slow = create_function(clients["lambda"], clients["iam"], unique("slow"), """
        import time
        def handler(event, context):
            time.sleep(4)
            return "too late"
        """, timeout=10)
    definition = {"StartAt": "Slow", "States": {"Slow": {
        "Type": "Task", "Resource": slow, "TimeoutSecondsPath": "$.limit", "End": True}}}
    machine = sfn.create_state_machine(name=unique("limit"), roleArn=ROLE,
                                       definition=json.dumps(definition))["stateMachineArn"]
    lambda_role(clients["iam"])

    arn = sfn.start_execution(stateMachineArn=machine,
                              input=json.dumps({"limit": 1}))["executionArn"]
    result = wait_done(sfn, arn)

    assert result["status"] == "FAILED"
    # Not cut at the 1 s the input names, the task would have answered "too late" (4 s).
    assert failure_of(sfn, arn)["error"] == "States.Timeout"
