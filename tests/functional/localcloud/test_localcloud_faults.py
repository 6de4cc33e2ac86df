"""Fault injection: functions' calls throttled in each service's wire format, retried by
botocore for real; calls from outside functions untouched; crashes after a side effect;
lost EventBridge deliveries; everything counted."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from amiforge.aws.errors import THROTTLING_CODES
from amiforge.localcloud.testing import create_function, receive_all, wait_for

# A function that makes the AWS calls it is told to and reports each outcome.
CALLER = """
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    CALLS = {
        "ec2": lambda c: c.describe_instances(),
        "dynamodb": lambda c: c.list_tables(),
        "sns": lambda c: c.list_topics(),
        "sqs": lambda c: c.list_queues(),
        "ssm": lambda c: c.describe_parameters(),
        "stepfunctions": lambda c: c.list_state_machines(),
    }

    def handler(event, context):
        config = Config(retries={"mode": "standard", "total_max_attempts": event["attempts"]})
        out = []
        for service in event["services"]:
            client = boto3.client(service, config=config)
            for _ in range(event.get("repeat", 1)):
                try:
                    CALLS[service](client)
                    out.append([service, "ok", 200])
                except ClientError as err:
                    out.append([service, err.response["Error"]["Code"],
                                err.response["ResponseMetadata"]["HTTPStatusCode"]])
        if event.get("create_queue"):
            boto3.client("sqs").create_queue(QueueName=event["create_queue"])
            out.append(["sqs", "created", 200])
        return out
    """


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def faults(local_cloud: Any) -> Iterator[Any]:
    """The cloud's injector, counters reset; every knob restored afterwards."""
    injector = local_cloud.faults
    before = injector.knobs()
    injector.reset_stats()
    try:
        yield injector
    finally:
        injector.configure(**before)


@pytest.fixture(scope="module")
def caller(local_cloud: Any) -> str:
    name = unique("caller")
    create_function(boto3.client("lambda"), boto3.client("iam"), name, CALLER, timeout=60)
    return name


def invoke(name: str, event: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    response = boto3.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event))
    return response, json.loads(response["Payload"].read())


SERVICES = ["ec2", "dynamodb", "sns", "sqs", "ssm", "stepfunctions"]


def test_calls_from_outside_functions_are_never_faulted(faults: Any) -> None:
    faults.configure(fault_rate=1.0, crash_rate=1.0)
    no_retries = Config(retries={"mode": "standard", "total_max_attempts": 1})
    boto3.client("ec2", config=no_retries).describe_instances()  # one attempt, answered
    boto3.client("dynamodb", config=no_retries).list_tables()
    # Only functions' calls are counted (a stack deployed earlier in this worker may run
    # its schedules' functions meanwhile): every fault belongs to one of them.
    stats = faults.stats()
    assert stats["function_calls"] == sum(f["calls"] for f in stats["by_function"].values())
    assert stats["faults"]["total"] == sum(f["faults"] for f in stats["by_function"].values())


def test_throttling_is_answered_in_each_services_own_format(faults: Any, caller: str) -> None:
    faults.configure(fault_rate=1.0, server_error_share=0.0)
    _, outcomes = invoke(caller, {"services": SERVICES, "attempts": 1})
    codes = {service: (code, status) for service, code, status in outcomes}
    assert codes["ec2"] == ("RequestLimitExceeded", 503)
    assert codes["sns"] == ("Throttling", 400)
    for service in ("dynamodb", "sqs", "ssm", "stepfunctions"):
        assert codes[service] == ("ThrottlingException", 400), service
    assert all(code in THROTTLING_CODES for code, _ in codes.values())
    stats = faults.stats()  # every fault a throttle (server_error_share 0); ours, one each
    assert "server_error" not in stats["faults"]
    assert stats["by_function"][caller]["faults"] == len(SERVICES)
    assert stats["faults"]["by_operation"]["throttling:DescribeInstances"] >= 1


def test_server_errors_are_5xx_that_botocore_retries(faults: Any, caller: str) -> None:
    faults.configure(fault_rate=1.0, server_error_share=1.0)
    _, outcomes = invoke(caller, {"services": ["ec2", "dynamodb", "sns"], "attempts": 1})
    assert [(s, c, st) for s, c, st in outcomes] == [
        ("ec2", "InternalError", 500), ("dynamodb", "InternalFailure", 500),
        ("sns", "InternalFailure", 500)]


def test_standard_retries_ride_out_a_fault_rate(faults: Any, caller: str) -> None:
    faults.configure(fault_rate=0.3, server_error_share=0.25, seed=11)
    _, outcomes = invoke(caller, {"services": ["ec2", "dynamodb"], "attempts": 8,
                                  "repeat": 20})
    assert [code for _, code, _ in outcomes] == ["ok"] * 40
    # This function's own figures: a stack deployed earlier in this worker may run its
    # schedules' functions meanwhile, and their calls are counted (and faulted) too.
    mine = faults.stats()["by_function"][caller]
    assert mine["faults"] >= 5  # 30% of 40+ calls
    # Every injected fault was answered by one more attempt from botocore: nothing lost.
    assert mine["sdk_retries"] == mine["faults"]
    assert mine["calls"] == 40 + mine["faults"]


def test_a_crash_kills_the_function_after_its_side_effect(faults: Any, caller: str) -> None:
    queue = unique("crashed")
    faults.configure(crash_rate=1.0)
    response, payload = invoke(caller, {"services": ["ec2"], "attempts": 1,
                                        "create_queue": queue})
    assert response.get("FunctionError") == "Unhandled"
    assert payload["errorType"] == "Runtime.ExitError"
    # CreateQueue (the first state-changing call) took effect before the process died.
    assert boto3.client("sqs").get_queue_url(QueueName=queue)["QueueUrl"]
    assert faults.stats()["crashes"] == {"total": 1, "by_function": {caller: 1}}
    faults.configure(crash_rate=0.0)
    response, payload = invoke(caller, {"services": ["ec2"], "attempts": 1})
    assert "FunctionError" not in response and payload == [["ec2", "ok", 200]]


def test_lost_event_deliveries_are_counted(faults: Any, local_cloud: Any) -> None:
    events, sqs = boto3.client("events"), boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName=unique("drops"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    rule = unique("drops")
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["chaos.test"]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": queue_arn}])
    entry = {"Source": "chaos.test", "DetailType": "t", "Detail": "{}"}

    faults.configure(event_drop_rate=1.0)
    events.put_events(Entries=[entry] * 3)
    assert faults.stats()["events"]["dropped_by_source"] == {"chaos.test": 3}
    faults.configure(event_drop_rate=0.0)
    events.put_events(Entries=[entry])
    assert len(receive_all(sqs, queue_url, 1)) == 1
    assert not sqs.receive_message(QueueUrl=queue_url).get("Messages")  # the 3 were lost


def test_knobs_are_checked_and_readable_over_http(faults: Any, local_cloud: Any) -> None:
    import urllib.request

    with pytest.raises(ValueError, match="fault_rate must be between 0 and 1"):
        faults.configure(fault_rate=1.5)
    request = urllib.request.Request(f"{local_cloud.endpoint}/_amiforge/faults",
                                     data=json.dumps({"event_drop_rate": 0.25}).encode(),
                                     method="POST")
    with urllib.request.urlopen(request) as response:
        assert json.load(response)["knobs"]["event_drop_rate"] == 0.25
    wait_for(lambda: faults.event_drop_rate == 0.25, what="the knob to be set")


def test_a_knob_typo_is_refused_not_ignored(faults: Any, local_cloud: Any) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{local_cloud.endpoint}/_amiforge/faults",
                                     data=json.dumps({"faultrate": 0.5}).encode(),
                                     method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 400
    assert "unknown fault knob 'faultrate'; did you mean 'fault_rate'?" in json.load(
        refused.value)["error"]
    assert faults.fault_rate == 0.0


def test_a_disabled_region_refuses_every_caller_as_aws_does(faults: Any,
                                                            local_cloud: Any) -> None:
    faults.configure(disabled_regions=["ap-east-1"])
    with pytest.raises(boto3.session.botocore.exceptions.ClientError) as refused:
        boto3.client("ec2", region_name="ap-east-1").describe_images(Owners=["self"])
    assert refused.value.response["Error"]["Code"] == "AuthFailure"
    with pytest.raises(boto3.session.botocore.exceptions.ClientError) as refused:
        boto3.client("ssm", region_name="ap-east-1").describe_parameters()
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
    boto3.client("ec2", region_name="us-east-1").describe_images(Owners=["self"])  # others fine
    with pytest.raises(ValueError, match="list of region names"):
        faults.configure(disabled_regions="ap-east-1")
