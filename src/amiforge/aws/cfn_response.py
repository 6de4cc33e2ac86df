"""Answer a CloudFormation custom-resource request: one HTTP PUT to its ResponseURL.

On AWS the ResponseURL is a pre-signed S3 URL (https); in the local cloud it is a plain
http route on the emulator. urllib speaks both (crhelper's sender only speaks https, and
retries for ever when it cannot connect). The body goes with an empty Content-Type, as
AWS's own ``cfn-response`` module sends it: the URL is signed without one.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from amiforge.errors import OperationFailed

SCHEMES = ("https://", "http://")


class ResponseNotDelivered(OperationFailed):
    """The answer could not be PUT to the ResponseURL."""


MIN_TRY_SECONDS = 0.2  # a PUT given less time than this cannot succeed: not worth a sleep


def retry_sleep(attempt: int, backoff: float, seconds_left: float) -> float | None:
    """How long to sleep before retry number ``attempt`` (1, 2, ...), or None to stop.

    The sleep is the exponential backoff, cut so that a try of at least
    :data:`MIN_TRY_SECONDS` still fits in ``seconds_left``: an answer after the Lambda's
    deadline is no answer, so time is never slept away past it.
    """
    room = seconds_left - MIN_TRY_SECONDS
    if room <= 0:
        return None
    return min(backoff * 2.0 ** (attempt - 1), room)


def send(url: str, body: dict[str, Any], *, attempts: int = 3, timeout: float = 5.0,
         backoff: float = 0.5, within: float | None = None,
         clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> int:
    """PUT ``body`` as JSON to ``url``; the HTTP status.

    Connection errors and 5xx are retried, up to ``attempts`` and, with ``within``, only
    while that many seconds last (a Lambda must answer before its own timeout): sleeps
    and each try's socket timeout are cut to the time left (:func:`retry_sleep`). The
    first try is always made, with whatever time there is.
    """
    if not url.startswith(SCHEMES):
        raise ResponseNotDelivered(f"ResponseURL {url[:80]!r} is not an http(s) URL")
    deadline = None if within is None else clock() + within
    data = json.dumps(body).encode()
    last: Exception | None = None
    tried = 0
    for attempt in range(attempts):
        left = None if deadline is None else deadline - clock()
        if attempt:
            pause = (backoff * 2 ** (attempt - 1) if left is None
                     else retry_sleep(attempt, backoff, left))
            if pause is None:
                break
            sleep(pause)
            left = None if deadline is None else deadline - clock()
        per_try = timeout if left is None else min(timeout, max(left, MIN_TRY_SECONDS / 2))
        request = urllib.request.Request(url, data=data, method="PUT", headers={
            "Content-Type": "", "Content-Length": str(len(data))})
        tried += 1
        try:
            with urllib.request.urlopen(request, timeout=per_try) as response:
                response.read()
                return int(response.status)
        except urllib.error.HTTPError as err:
            last = err
            if err.code < 500:  # S3 refused the answer (expired URL, bad signature)
                break
        except (urllib.error.URLError, OSError) as err:
            last = err
    raise ResponseNotDelivered(f"could not PUT the answer to the ResponseURL after "
                               f"{tried} attempt(s): {last}")
