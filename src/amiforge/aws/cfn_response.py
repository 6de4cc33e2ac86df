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
from typing import Any

from amiforge.errors import OperationFailed

SCHEMES = ("https://", "http://")


class ResponseNotDelivered(OperationFailed):
    """The answer could not be PUT to the ResponseURL."""


def send(url: str, body: dict[str, Any], *, attempts: int = 3, timeout: float = 5.0,
         backoff: float = 0.5, within: float | None = None) -> int:
    """PUT ``body`` as JSON to ``url``; the HTTP status.

    Connection errors and 5xx are retried, up to ``attempts`` and, with ``within``, only
    while that many seconds last (a Lambda must answer before its own timeout).
    """
    if not url.startswith(SCHEMES):
        raise ResponseNotDelivered(f"ResponseURL {url[:80]!r} is not an http(s) URL")
    deadline = None if within is None else time.monotonic() + within
    data = json.dumps(body).encode()
    last: Exception | None = None
    tried = 0
    for attempt in range(attempts):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        per_try = timeout if deadline is None else min(timeout, deadline - time.monotonic())
        if per_try < 0.2:
            break
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
