"""SQS -> Lambda event source mappings as AWS documents them (moto 5.2.5 departs).

moto, as shipped, runs the mapped function *inside* SendMessage: the sender's request
blocks until the function returns, each message is its own one-record batch whose
``ApproximateReceiveCount`` always reads "1", the function's answer is ignored except
for an unhandled error, and a failed message is made visible again at once but only
looked at when the next message arrives. ``batchItemFailures`` means nothing, so a
poison message is deleted with the batch or retried forever, and a redrive policy only
acts by accident.

AWS's Lambda instead polls the queue: it receives up to ``BatchSize`` messages with the
queue's visibility timeout, invokes the function synchronously with all of them, and

* on success deletes the batch, or with ``FunctionResponseTypes: [ReportBatchItemFailures]``
  deletes all but the messages named in ``batchItemFailures`` (an answer naming an
  unknown, empty or null ``itemIdentifier``, or that is not JSON, fails the whole batch);
* on a function error deletes nothing.

What is not deleted becomes visible again when its visibility timeout ends and is
received again, its receive count growing; SQS moves it to the dead-letter queue once it
has been received ``maxReceiveCount`` times (moto's ReceiveMessage does that part).

The local cloud does this: ``CreateEventSourceMapping`` no longer hooks the mapping onto
the queue (so SendMessage returns at once; :mod:`.fills.awslambda`), and :class:`Poller`
(started and stopped with the cloud) serves every
enabled SQS mapping of every account and region, up to :data:`CONCURRENCY` batches at a
time per mapping, as Lambda's pollers do.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections import defaultdict
from typing import Any

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
CONCURRENCY = 5  # batches in flight per mapping (Lambda starts with five pollers)


def _sqs_backend(account: str, region: str) -> Any:
    from moto.sqs.models import sqs_backends

    return sqs_backends[account][region]


def queue_of(esm: Any) -> Any:
    """The moto queue an event source mapping reads, or None (not SQS, or gone)."""
    arn = str(getattr(esm, "event_source_arn", ""))
    parts = arn.split(":")
    if len(parts) < 6 or parts[2] != "sqs":
        return None
    region, account, name = parts[3], parts[4], parts[5]
    return _sqs_backend(account, region).queues.get(name)


def _mappings() -> list[Any]:
    from moto.awslambda.models import lambda_backends

    found = []
    for _account, regions in list(lambda_backends.items()):
        for _region, backend in list(regions.items()):
            for esm in list(getattr(backend, "_event_source_mappings", {}).values()):
                if esm.enabled and ":sqs:" in str(esm.event_source_arn):
                    found.append(esm)
    return found


class Poller:
    """Lambda's SQS pollers: a thread serving every enabled SQS mapping."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._inflight: dict[str, int] = defaultdict(int)
        self._thread = threading.Thread(target=self._run, name="amiforge-sqs-poller",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.poll()
            except Exception:  # a bad tick must not end the poller
                log.exception("SQS event source poll failed")

    def poll(self) -> None:
        for esm in _mappings():
            while not self._stop.is_set():
                with self._lock:
                    if self._inflight[esm.uuid] >= CONCURRENCY:
                        break
                queue = queue_of(esm)
                if queue is None:
                    break
                backend = _sqs_backend(queue.account_id, queue.region)
                messages = backend.receive_message(queue.name, int(esm.batch_size or 10), 0,
                                                   int(queue.visibility_timeout or 30))
                if not messages:
                    break
                with self._lock:
                    self._inflight[esm.uuid] += 1
                threading.Thread(target=self._deliver, args=(esm, queue, messages),
                                 name=f"sqs-esm-{esm.uuid[:8]}", daemon=True).start()

    def _deliver(self, esm: Any, queue: Any, messages: list[Any]) -> None:
        try:
            failed = _invoke(esm, queue, messages)
            backend = _sqs_backend(queue.account_id, queue.region)
            for message in messages:
                if message.id in failed:
                    continue  # stays in flight; visible again after the visibility timeout
                try:
                    backend.delete_message(queue.name, message.receipt_handle)
                except Exception:  # deleted or moved meanwhile
                    log.debug("could not delete message %s", message.id)
        except Exception:
            log.exception("delivering a batch from %s failed", queue.name)
        finally:
            with self._lock:
                self._inflight[esm.uuid] -= 1


def _invoke(esm: Any, queue: Any, messages: list[Any]) -> set[str]:
    """Invoke the function with the batch; the ids of the messages that failed."""
    from moto.awslambda.utils import get_backend

    everything = {m.id for m in messages}
    event = {"Records": [_record(m, queue) for m in messages]}
    response_headers: dict[str, Any] = {}
    payload = get_backend(esm.account_id, esm.region).invoke(
        function_name=esm.function_arn, qualifier=None, body=json.dumps(event), headers={},
        response_headers=response_headers)
    if "x-amz-function-error" in response_headers:
        return everything
    if "ReportBatchItemFailures" not in (esm.function_response_types or []):
        return set()
    return batch_item_failures(payload, everything)


def batch_item_failures(payload: Any, batch: set[str]) -> set[str]:
    """The failed message ids a function's answer names, as Lambda reads it."""
    try:
        answer = json.loads(payload) if payload not in (None, b"", "") else None
    except (TypeError, ValueError):
        return set(batch)  # not JSON: the whole batch failed
    if not isinstance(answer, dict) or not answer.get("batchItemFailures"):
        return set()  # null, empty, or no failures reported: all succeeded
    failures = answer["batchItemFailures"]
    if not isinstance(failures, list):
        return set(batch)
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in batch:
            return set(batch)  # empty, null, misnamed or unknown id: the whole batch failed
        failed.add(identifier)
    return failed


def _record(message: Any, queue: Any) -> dict[str, Any]:
    attributes = {
        "ApproximateReceiveCount": str(message.approximate_receive_count),
        "SentTimestamp": str(message.sent_timestamp),
        "SenderId": str(message.sender_id),
        "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
    }
    if message.group_id:
        attributes["MessageGroupId"] = message.group_id
    if message.deduplication_id:
        attributes["MessageDeduplicationId"] = message.deduplication_id
    if message.sequence_number:
        attributes["SequenceNumber"] = str(message.sequence_number)
    return {
        "messageId": message.id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": {name: _attribute(value)
                              for name, value in (message.message_attributes or {}).items()},
        "md5OfBody": message.body_md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue.queue_arn,
        "awsRegion": queue.region,
    }


def _attribute(value: dict[str, Any]) -> dict[str, Any]:
    binary = value.get("BinaryValue")
    if isinstance(binary, bytes):
        binary = base64.b64encode(binary).decode()
    return {"stringValue": value.get("StringValue"), "binaryValue": binary,
            "stringListValues": [], "binaryListValues": [], "dataType": value.get("DataType")}
