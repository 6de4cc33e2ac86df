"""SQS -> Lambda event source mappings behave as on AWS (see localcloud/sqs_poller.py and localcloud/fills/awslambda.py).

moto as shipped runs the function inside SendMessage and ignores batchItemFailures; here
a poller delivers batches, deletes only what succeeded, and a message that keeps failing
reaches the dead-letter queue through the redrive policy.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest

from amiforge.localcloud.testing import create_function, receive_all, wait_for

HANDLER = """
    import json, os, time
    import boto3
    sqs = boto3.client("sqs")
    def handler(event, context):
        time.sleep(float(os.environ.get("SLEEP", "0")))
        failures = []
        for record in event["Records"]:
            sqs.send_message(QueueUrl=os.environ["SEEN"], MessageBody=json.dumps({
                "body": record["body"], "batch": len(event["Records"]),
                "count": record["attributes"]["ApproximateReceiveCount"]}))
            if record["body"].startswith("poison"):
                failures.append({"itemIdentifier": record["messageId"]})
        if os.environ.get("RAISE") and failures:
            raise RuntimeError("poison in the batch")
        return {"batchItemFailures": failures}
    """


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def clients(local_cloud: Any) -> dict[str, Any]:
    return {name: boto3.client(name) for name in ("sqs", "lambda", "iam")}


def queue(sqs: Any, name: str, **attributes: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    return url, arn


def mapped_queue(clients: dict[str, Any], *, report_failures: bool = True, visibility: int = 2,
                 env: dict[str, str] | None = None) -> dict[str, str]:
    """A work queue (2 receives, then its DLQ) mapped to a warm HANDLER, mapping disabled.

    The function is invoked once first, so that its deliveries are warm and finish well
    within the visibility timeout even on a busy machine (a slower function would see its
    messages again, as on AWS).
    """
    sqs, lam = clients["sqs"], clients["lambda"]
    name = unique("work")
    dlq_url, dlq_arn = queue(sqs, f"{name}-dlq")
    seen_url, _ = queue(sqs, f"{name}-seen")
    url, arn = queue(sqs, name, VisibilityTimeout=str(visibility), RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}))
    create_function(lam, clients["iam"], name, HANDLER, env={"SEEN": seen_url, **(env or {})})
    assert "FunctionError" not in lam.invoke(FunctionName=name,
                                             Payload=json.dumps({"Records": []}))
    mapping = lam.create_event_source_mapping(
        EventSourceArn=arn, FunctionName=name, BatchSize=10, Enabled=False,
        FunctionResponseTypes=["ReportBatchItemFailures"] if report_failures else [])
    return {"url": url, "dlq": dlq_url, "seen": seen_url, "mapping": mapping["UUID"]}


def enable(clients: dict[str, Any], q: dict[str, str]) -> None:
    clients["lambda"].update_event_source_mapping(UUID=q["mapping"], Enabled=True)


def counts(sqs: Any, url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return (int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]))


def test_partial_batch_failure_deletes_the_rest_and_redrives_the_poison(
        clients: dict[str, Any]) -> None:
    sqs = clients["sqs"]
    q = mapped_queue(clients)
    sqs.send_message_batch(QueueUrl=q["url"], Entries=[
        {"Id": "a", "MessageBody": "ok-a"}, {"Id": "p", "MessageBody": "poison-1"},
        {"Id": "b", "MessageBody": "ok-b"}])
    enable(clients, q)  # the three are waiting: one batch

    (dead,) = receive_all(sqs, q["dlq"], 1, timeout=30)
    assert dead == "poison-1"
    seen = receive_all(sqs, q["seen"], 4)
    assert sorted((s["body"], s["count"]) for s in seen) == [
        ("ok-a", "1"), ("ok-b", "1"), ("poison-1", "1"), ("poison-1", "2")]
    assert {s["batch"] for s in seen if s["count"] == "1"} == {3}
    wait_for(lambda: counts(sqs, q["url"]) == (0, 0), what="an empty work queue")


def test_a_function_error_fails_the_whole_batch(clients: dict[str, Any]) -> None:
    sqs = clients["sqs"]
    q = mapped_queue(clients, env={"RAISE": "1"})
    sqs.send_message_batch(QueueUrl=q["url"], Entries=[
        {"Id": "a", "MessageBody": "ok-a"}, {"Id": "p", "MessageBody": "poison-1"}])
    enable(clients, q)
    dead = receive_all(sqs, q["dlq"], 2, timeout=30)
    assert sorted(dead) == ["ok-a", "poison-1"]


def test_delivery_is_asynchronous_and_an_answer_counts_only_when_reported(
        clients: dict[str, Any]) -> None:
    sqs = clients["sqs"]
    q = mapped_queue(clients, report_failures=False, visibility=30, env={"SLEEP": "2"})
    enable(clients, q)
    sqs.send_message(QueueUrl=q["url"], MessageBody="poison-ignored")
    # moto as shipped runs the function (which sleeps 2 s, then reports to `seen`) inside
    # SendMessage: its report would already be there.
    assert sqs.receive_message(QueueUrl=q["seen"], WaitTimeSeconds=0).get("Messages", []) == []
    (seen,) = receive_all(sqs, q["seen"], 1)
    assert seen["count"] == "1"
    wait_for(lambda: counts(sqs, q["url"]) == (0, 0), what="the message deleted")
    assert sqs.receive_message(QueueUrl=q["dlq"], WaitTimeSeconds=0).get("Messages") is None
