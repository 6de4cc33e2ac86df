"""How the local cloud's SQS poller reads a function's answer (as Lambda documents it)."""

from __future__ import annotations

import json

import pytest

from amiforge.localcloud.sqs_poller import batch_item_failures

BATCH = {"m1", "m2", "m3"}


def answer(value: object) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize("payload", [answer(None), answer({}), answer({"batchItemFailures": []}),
                                     answer({"batchItemFailures": None}), b"", None,
                                     answer("done")])
def test_no_failures_reported_means_the_whole_batch_succeeded(payload: object) -> None:
    assert batch_item_failures(payload, BATCH) == set()


def test_the_named_messages_failed() -> None:
    payload = answer({"batchItemFailures": [{"itemIdentifier": "m2"}]})
    assert batch_item_failures(payload, BATCH) == {"m2"}


@pytest.mark.parametrize("failures", [[{"itemIdentifier": ""}], [{"itemIdentifier": None}],
                                      [{"itemId": "m1"}], [{"itemIdentifier": "unknown"}],
                                      [{"itemIdentifier": "m1"}, {"itemIdentifier": "zz"}],
                                      "m1", ["m1"]])
def test_a_bad_failure_report_fails_the_whole_batch(failures: object) -> None:
    assert batch_item_failures(answer({"batchItemFailures": failures}), BATCH) == BATCH


def test_an_answer_that_is_not_json_fails_the_whole_batch() -> None:
    assert batch_item_failures(b"{not json", BATCH) == BATCH
