"""The CloudFormation custom-resource protocol: every request gets exactly one answer.

A stack waiting on a custom resource that never answers sits ``CREATE_IN_PROGRESS`` for an
hour, so :func:`respond` answers whatever arrives:

* :func:`answer` turns a request into the response body and never raises. ``Create`` and
  ``Update`` call the resource's ``resolve(properties) -> (physical id, data)``; ``Delete``
  calls ``delete`` (by default nothing); a missing or odd ``ResourceProperties``, an
  unknown ``RequestType`` or any error becomes ``FAILED`` with a reason that says why.
* The body is kept under CloudFormation's 4,096-byte limit by shortening the reason
  (its head, which names the resource and the value, is kept), then, for a request whose
  echoed ids alone are too long, those ids.
* The Lambda's remaining time is split by :func:`budget`: a safety margin kept back, then
  a share for the PUT (and its retries, whose sleeps never pass the deadline), the rest
  for ``resolve``. If ``resolve`` is still running when its share is spent, the answer is
  ``FAILED`` ("timed out"), sent once.

Only the PUT itself (:mod:`amiforge.aws.cfn_response`) touches the network.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from amiforge.aws import cfn_response
from amiforge.errors import AmiforgeError, InvalidInput

log = logging.getLogger(__name__)

SUCCESS, FAILED = "SUCCESS", "FAILED"
REQUEST_TYPES = ("Create", "Update", "Delete")
MAX_RESPONSE_BYTES = 4096  # CloudFormation refuses a larger answer
TRUNCATED = " [truncated]"
SEND_MARGIN_SECONDS = 6.0  # kept back from the deadline for the PUT (and its retries)
SAFETY_SECONDS = 0.5  # never planned: the Lambda runtime's own overhead after the PUT
DEFAULT_SECONDS = 25.0  # when there is no Lambda context to ask
ECHOED = ("PhysicalResourceId", "StackId", "RequestId", "LogicalResourceId")

Resolver = Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]


def shown(value: Any, limit: int = 60) -> str:
    """``repr`` of a value from an event, cut short: it goes into a one-line reason."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def fallback_physical_id(event: Mapping[str, Any]) -> str:
    """The id to answer with when the resource has none of its own (a failed Create)."""
    physical = event.get("PhysicalResourceId")
    if isinstance(physical, str) and physical:
        return physical
    logical = event.get("LogicalResourceId")
    return f"{logical if isinstance(logical, str) and logical else 'resource'}-unresolved"


def budget(seconds_left: float) -> tuple[float, float]:
    """(seconds for the lookup, seconds for the PUT) out of a Lambda's remaining time.

    The PUT gets :data:`SEND_MARGIN_SECONDS`, or half of what is usable when time is short;
    both shares end :data:`SAFETY_SECONDS` before the deadline.
    """
    usable = max(seconds_left - SAFETY_SECONDS, 0.0)
    send = min(SEND_MARGIN_SECONDS, usable / 2)
    return usable - send, send


def _size(body: dict[str, Any]) -> int:
    return len(json.dumps(body).encode())


def _bisect(fits: Callable[[int], bool], high: int) -> int:
    """The largest ``n`` in 0..high with ``fits(n)`` (escapes vary, so sizes are measured)."""
    low = 0
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return low


def fit(body: dict[str, Any], limit: int = MAX_RESPONSE_BYTES) -> dict[str, Any]:
    """Shorten ``Reason`` (keeping its head), then the echoed ids, to at most ``limit`` bytes."""
    if _size(body) <= limit:
        return body
    reason = str(body.get("Reason") or "")

    def with_reason(keep: int) -> dict[str, Any]:
        return {**body, "Reason": reason[:keep] + TRUNCATED}

    keep = _bisect(lambda n: _size(with_reason(n)) <= limit, len(reason))
    fitted = with_reason(keep)
    if _size(fitted) <= limit:
        return fitted
    # Only a request with absurd ids gets here (CloudFormation's own are short): cut every
    # echoed field to one common length, and drop Data, so that an answer still goes out.
    fitted = {**fitted, "Reason": TRUNCATED.strip()}
    fitted.pop("Data", None)
    echoed = {k: str(fitted.get(k, "")) for k in ECHOED}

    def with_ids(cap: int) -> dict[str, Any]:
        return {**fitted, **{k: v[:cap] for k, v in echoed.items()}}

    cap = _bisect(lambda n: _size(with_ids(n)) <= limit, max(map(len, echoed.values())))
    return with_ids(cap)


def answer(event: Any, resolve: Resolver,
           delete: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """The response body for one request (see the module doc). Never raises."""
    request: Mapping[str, Any] = event if isinstance(event, Mapping) else {}
    body = _failed(request, "")
    try:
        body.update(_dispatch(request, resolve, delete))
    except AmiforgeError as err:
        body["Reason"] = str(err)
    except Exception as err:  # a bug must still answer, or the stack waits an hour
        log.exception("custom resource request crashed")
        body["Reason"] = f"{type(err).__name__}: {err}"
    return fit(body)


def _failed(request: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """A FAILED body echoing the request's ids, as CloudFormation matches answers by them."""
    return {
        "Status": FAILED, "Reason": reason,
        "PhysicalResourceId": fallback_physical_id(request),
        "StackId": str(request.get("StackId", "")),
        "RequestId": str(request.get("RequestId", "")),
        "LogicalResourceId": str(request.get("LogicalResourceId", "")),
    }


def _dispatch(request: Mapping[str, Any], resolve: Resolver,
              delete: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
    kind = request.get("RequestType")
    if kind not in REQUEST_TYPES:
        raise InvalidInput(f"unknown RequestType {shown(kind)}: expected "
                           f"{', '.join(REQUEST_TYPES)}")
    properties = request.get("ResourceProperties")
    if kind == "Delete":
        # Deleting must work even for a resource that never resolved (a failed Create is
        # rolled back with a Delete), so it does not look at the properties' values.
        if delete is not None:
            delete(dict(properties) if isinstance(properties, Mapping) else {})
        return {"Status": SUCCESS}
    if not isinstance(properties, Mapping):
        raise InvalidInput(f"ResourceProperties must be a map of the resource's properties, "
                           f"got {shown(properties)}")
    physical_id, data = resolve(dict(properties))
    return {"Status": SUCCESS, "PhysicalResourceId": physical_id, "Data": data}


def answer_by(event: Any, resolve: Resolver, seconds: float,
              delete: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """:func:`answer`, or a FAILED "timed out" body if it takes longer than ``seconds``."""
    result: list[dict[str, Any]] = []
    worker = threading.Thread(target=lambda: result.append(answer(event, resolve, delete)),
                              name="custom-resource", daemon=True)
    worker.start()
    worker.join(max(seconds, 0.0))
    if result:
        return result[0]
    request = event if isinstance(event, Mapping) else {}
    return fit(_failed(request, f"timed out after {seconds:.1f}s answering "
                                f"{shown(request.get('RequestType'))}: the lookup did not finish"))


def respond(event: Any, resolve: Resolver, *, seconds_left: float | None = None,
            delete: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Answer ``event`` on its ResponseURL; returns the body (also when it had no URL).

    Raises :class:`~amiforge.aws.cfn_response.ResponseNotDelivered` if the PUT fails:
    the Lambda invocation then fails, and AWS retries an asynchronous one.
    """
    started = time.monotonic()
    total = DEFAULT_SECONDS if seconds_left is None else seconds_left
    lookup_seconds, _send_seconds = budget(total)
    body = answer_by(event, resolve, lookup_seconds, delete)
    url = event.get("ResponseURL") if isinstance(event, Mapping) else None
    if not isinstance(url, str) or not url.startswith(cfn_response.SCHEMES):
        log.error("custom resource request without an http(s) ResponseURL (%s): nobody "
                  "to answer; the body was %s", shown(url), body.get("Status"))
        return body
    cfn_response.send(url, body, within=total - (time.monotonic() - started) - SAFETY_SECONDS)
    return body
