"""GetExecutionHistory's paging as AWS documents it (moto 5.2.5 ignores it).

moto answers GetExecutionHistory with every event of the execution, oldest first, whatever
``reverseOrder``, ``maxResults`` and ``nextToken`` say. AWS returns at most ``maxResults``
events (1 to 1000; 0 or absent: 100), newest first with ``reverseOrder``, and a
``nextToken`` while more remain; a token that is not one it gave for this execution and
order is refused with ``InvalidToken``. A caller that wants the state an execution is in
asks for the newest few events only, so paging decides what each poll costs.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from amiforge.localcloud.fills import Fill

DEFAULT_PAGE = 100
MAX_PAGE = 1000


def _token(arn: str, reverse: bool, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([arn, reverse, offset]).encode()).decode()


def _offset(token: str | None, arn: str, reverse: bool) -> int:
    """Where the page ``token`` names starts; InvalidToken for any other token."""
    from moto.stepfunctions.exceptions import InvalidToken

    if token is None:
        return 0
    try:
        found = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeError):
        raise InvalidToken("not a token GetExecutionHistory gave") from None
    if (not isinstance(found, list) or len(found) != 3 or found[:2] != [arn, reverse]
            or not isinstance(found[2], int) or isinstance(found[2], bool) or found[2] < 0):
        raise InvalidToken("not a token GetExecutionHistory gave for this execution "
                           "and order") from None
    return int(found[2])


def page(events: list[Any], arn: str, *, reverse: bool, max_results: int | None,
         token: str | None) -> dict[str, Any]:
    """One page of ``events`` (oldest first) as AWS pages them."""
    from moto.stepfunctions.exceptions import InvalidToken

    size = max_results or DEFAULT_PAGE
    if not 0 < size <= MAX_PAGE:
        raise InvalidToken(f"maxResults must be 0 to {MAX_PAGE}, got {max_results}")
    ordered = list(reversed(events)) if reverse else list(events)
    start = _offset(token, arn, reverse)
    answer: dict[str, Any] = {"events": ordered[start:start + size]}
    if start + size < len(ordered):
        answer["nextToken"] = _token(arn, reverse, start + size)
    return answer


def _get_execution_history(_original: Callable[..., Any]) -> Callable[..., Any]:
    def get_execution_history(self: Any) -> Any:
        from moto.core.responses import ActionResult

        arn = self._get_param("executionArn")
        history = self.stepfunction_backend.get_execution_history(arn)
        return ActionResult(page(list(history.get("events", [])), str(arn),
                                 reverse=bool(self._get_param("reverseOrder")),
                                 max_results=self._get_int_param("maxResults"),
                                 token=self._get_param("nextToken")))

    return get_execution_history


FILLS = [
    Fill("stepfunctions.execution-history-pages", "moto.stepfunctions.responses:"
         "StepFunctionResponse", "get_execution_history", _get_execution_history,
         "3889cc6224ac"),
]
