"""Lambda fills: invocations run in the local runtime, and SQS is polled as AWS polls it.

* ``LambdaFunction._invoke_lambda`` (the one place moto runs a function; shipped, it
  needs Docker) runs it in the attached :class:`~amiforge.localcloud.lambda_runtime.
  LambdaRuntime` instead, for every invoke: the API, Step Functions tasks, CloudFormation
  custom resources.
* ``LambdaFunction.invoke``: ``InvocationType=Event`` answers at once and runs the
  function on a thread, as AWS's asynchronous invoke does (moto runs it inline);
  ``DryRun`` runs nothing; a failed function sets ``FunctionError`` and the log tail.
* ``CreateEventSourceMapping`` of an SQS queue no longer hooks the mapping onto the queue
  (moto would run the function inside SendMessage); the poller
  (:mod:`amiforge.localcloud.sqs_poller`) serves it as AWS's Lambda does.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from amiforge.localcloud import lambda_runtime, sqs_poller
from amiforge.localcloud.fills import Fill


def _normalise_event(event: Any) -> Any:
    # moto hands over json.loads(body), or the string "{}" for an empty body.
    if isinstance(event, str | bytes):
        try:
            return json.loads(event)
        except ValueError:
            return event
    return {} if event is None else event


def invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
    """``LambdaFunction._invoke_lambda``: ``(payload, errored, log tail)``."""
    runtime = lambda_runtime.attached()
    if runtime is None:
        return json.dumps({"errorType": "ServiceException",
                           "errorMessage": "the local cloud is not running"}), True, ""
    return runtime.invoke(self, _normalise_event(event))


def invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> str | bytes:
    """``LambdaFunction.invoke``, with AWS's invocation types."""
    event = json.loads(body) if body else {}
    invocation_type = (request_headers or {}).get("x-amz-invocation-type") or \
        (request_headers or {}).get("X-Amz-Invocation-Type") or "RequestResponse"
    if invocation_type == "DryRun":
        return ""
    if invocation_type == "Event":
        lambda_runtime.invoke_async(self, event)
        return ""
    payload, errored, tail = self._invoke_lambda(event=event)
    if errored:
        response_headers["x-amz-function-error"] = "Unhandled"
    response_headers["x-amz-executed-version"] = "$LATEST"
    response_headers["x-amz-log-result"] = base64.b64encode(tail.encode()).decode()
    return str(payload).encode("utf-8")


def _create_event_source_mapping(original: Callable[..., Any]) -> Callable[..., Any]:
    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        esm = original(self, spec)
        queue = sqs_poller.queue_of(esm)
        if queue is not None and queue.lambda_event_source_mappings.get(esm.function_arn) is esm:
            # Unhooked: moto would run the function inside SendMessage. The poller serves it.
            del queue.lambda_event_source_mappings[esm.function_arn]
        return esm

    return create_event_source_mapping


_FUNCTION = "moto.awslambda.models:LambdaFunction"

FILLS = [
    Fill("lambda.run-in-local-runtime", _FUNCTION, "_invoke_lambda",
         lambda _original: invoke_lambda, "23ce7a8f956e"),
    Fill("lambda.invocation-types", _FUNCTION, "invoke", lambda _original: invoke, "dadc324f30ae"),
    Fill("lambda.sqs-mapping-polled", "moto.awslambda.models:LambdaBackend",
         "create_event_source_mapping", _create_event_source_mapping, "19f8125cabf7"),
]
