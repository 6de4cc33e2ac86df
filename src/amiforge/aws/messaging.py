"""SNS notifications and SQS cleanup messages: both best left fire-and-forget-but-logged."""

from __future__ import annotations

import json
from typing import Any

from amiforge.aws.errors import aws_call


def notify(sns: Any, topic_arn: str | None, subject: str, message: dict[str, Any]) -> None:
    if not topic_arn:
        return
    with aws_call("Publish"):
        sns.publish(TopicArn=topic_arn, Subject=subject[:100],
                    Message=json.dumps(message, sort_keys=True, default=str),
                    MessageAttributes={
                        "status": {"DataType": "String", "StringValue": str(message.get("status"))},
                        "recipe": {"DataType": "String", "StringValue": str(message.get("recipe"))},
                    })


def send_cleanup(sqs: Any, queue_url: str | None, message: dict[str, Any]) -> None:
    if not queue_url:
        return
    with aws_call("SendMessage"):
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(message, sort_keys=True))


def dead_letter(sqs: Any, queue_url: str, body: str, *, reason: str, message_id: str) -> None:
    """Put a refused message on the dead-letter queue as it came, with why."""
    with aws_call("SendMessage"):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body or "(empty)",
                         MessageAttributes={
                             "reason": {"DataType": "String", "StringValue": reason[:1024]},
                             "original_message_id": {"DataType": "String",
                                                     "StringValue": message_id or "?"}})
