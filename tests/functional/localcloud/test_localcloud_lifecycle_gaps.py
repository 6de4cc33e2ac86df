"""StopExecution, image deprecation and data-type parameter filters as AWS has them
(localcloud/fills/: stepfunctions, ec2_images, ssm)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from amiforge.localcloud.testing import wait_for


@pytest.fixture
def ec2(local_cloud: Any) -> Any:
    return boto3.client("ec2")


BASE = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"


def an_image(ec2: Any) -> str:
    base = boto3.client("ssm").get_parameter(Name=BASE)["Parameter"]["Value"]
    instance = ec2.run_instances(ImageId=base, MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"]
    return ec2.create_image(InstanceId=instance, Name=f"img-{uuid.uuid4().hex[:8]}")["ImageId"]


def test_enable_image_deprecation_rounds_to_the_minute_and_shows(ec2: Any) -> None:
    image = an_image(ec2)
    assert "DeprecationTime" not in ec2.describe_images(ImageIds=[image])["Images"][0]
    when = datetime(2031, 3, 4, 5, 6, 40, tzinfo=UTC)
    assert ec2.enable_image_deprecation(ImageId=image, DeprecateAt=when)["Return"] is True
    shown = ec2.describe_images(ImageIds=[image])["Images"][0]["DeprecationTime"]
    assert shown == "2031-03-04T05:07:00.000Z"
    ec2.disable_image_deprecation(ImageId=image)
    assert "DeprecationTime" not in ec2.describe_images(ImageIds=[image])["Images"][0]


def test_enable_image_deprecation_refuses_the_past_and_unknown_images(ec2: Any) -> None:
    image = an_image(ec2)
    with pytest.raises(ClientError) as past:
        ec2.enable_image_deprecation(ImageId=image,
                                     DeprecateAt=datetime.now(UTC) - timedelta(days=1))
    assert past.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as unknown:
        ec2.enable_image_deprecation(ImageId="ami-00000000deadbeef",
                                     DeprecateAt=datetime.now(UTC) + timedelta(days=1))
    assert unknown.value.response["Error"]["Code"] == "InvalidAMIID.NotFound"


def test_describe_parameters_filters_by_data_type(local_cloud: Any, ec2: Any) -> None:
    ssm = boto3.client("ssm")
    prefix = f"/gaps-{uuid.uuid4().hex[:8]}"
    image = an_image(ec2)
    ssm.put_parameter(Name=f"{prefix}/ami", Value=image, Type="String",
                      DataType="aws:ec2:image")
    ssm.put_parameter(Name=f"{prefix}/text", Value=image, Type="String")
    names = [p["Name"] for page in ssm.get_paginator("describe_parameters").paginate(
        ParameterFilters=[{"Key": "DataType", "Values": ["aws:ec2:image"]}])
        for p in page["Parameters"]]
    assert f"{prefix}/ami" in names
    assert f"{prefix}/text" not in names
    both = ssm.describe_parameters(ParameterFilters=[
        {"Key": "DataType", "Values": ["aws:ec2:image"]},
        {"Key": "Name", "Option": "BeginsWith", "Values": [prefix]}])["Parameters"]
    assert [p["Name"] for p in both] == [f"{prefix}/ami"]


def test_stop_execution_aborts_an_execution_waiting_for_a_task_token(local_cloud: Any) -> None:
    sqs, sfn, iam = (boto3.client(n) for n in ("sqs", "stepfunctions", "iam"))
    name = f"wait-{uuid.uuid4().hex[:8]}"
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    definition = {"StartAt": "Wait", "States": {"Wait": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
        "TimeoutSeconds": 3600, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
        "End": True}, "Caught": {"Type": "Pass", "End": True}}}
    machine = sfn.create_state_machine(name=name, definition=json.dumps(definition),
                                       roleArn=role)["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, name="e")["executionArn"]
    wait_for(lambda: sqs.receive_message(QueueUrl=queue).get("Messages"),
             what="the task waiting for its token")

    sfn.stop_execution(executionArn=execution, error="Stopped", cause="by the test")

    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
    events = wait_for(lambda: [e["type"] for e in sfn.get_execution_history(
        executionArn=execution)["events"] if e["type"].startswith("Execution")][1:],
        what="the execution's end in its history")
    assert events == ["ExecutionAborted"]
    history = [e["type"] for e in sfn.get_execution_history(executionArn=execution)["events"]]
    assert not any(t.startswith("PassState") for t in history)  # the Catch did not run
    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"
