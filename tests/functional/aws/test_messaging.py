"""aws/messaging.py on the local cloud: notifications reach SNS subscribers with the
attributes subscribers filter on; cleanup and dead-letter messages reach their queues."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from amiforge.aws import messaging
from amiforge.aws.session import AwsContext


def _receive(sqs: Any, url: str) -> list[dict[str, Any]]:
    return list(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                    MessageAttributeNames=["All"]).get("Messages", []))


def test_a_notification_carries_status_and_recipe(aws: AwsContext,
                                                 unique: Callable[[str], str]) -> None:
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = sns.create_topic(Name=unique("topic"))["TopicArn"]
    url = sqs.create_queue(QueueName=unique("subscriber"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn,
                  Attributes={"RawMessageDelivery": "true"})
    messaging.notify(sns, topic, "amiforge: web build failed " + "x" * 200,
                     {"status": "FAILED", "recipe": "web", "build_id": "web-1"})
    messaging.notify(sns, None, "nowhere", {"status": "FAILED"})  # no topic: nothing
    (message,) = _receive(sqs, url)
    assert json.loads(message["Body"]) == {"build_id": "web-1", "recipe": "web",
                                           "status": "FAILED"}


def test_cleanup_and_dead_letter_messages_reach_their_queues(
        aws: AwsContext, unique: Callable[[str], str]) -> None:
    sqs = aws.client("sqs")
    cleanup = sqs.create_queue(QueueName=unique("cleanup"))["QueueUrl"]
    dead = sqs.create_queue(QueueName=unique("dead"))["QueueUrl"]
    messaging.send_cleanup(sqs, cleanup, {"recipe": "web", "build_id": "web-1"})
    messaging.send_cleanup(sqs, None, {"recipe": "web"})  # no queue: nothing
    (sent,) = _receive(sqs, cleanup)
    assert json.loads(sent["Body"]) == {"build_id": "web-1", "recipe": "web"}
    messaging.dead_letter(sqs, dead, "", reason="not json", message_id="m-1")
    (refused,) = _receive(sqs, dead)
    assert refused["Body"] == "(empty)"
    assert refused["MessageAttributes"]["reason"]["StringValue"] == "not json"
    assert refused["MessageAttributes"]["original_message_id"]["StringValue"] == "m-1"
