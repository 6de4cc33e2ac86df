"""One lock for the moto writes AWS makes atomic (:mod:`.dynamodb`, :mod:`.stepfunctions`).

DynamoDB conditional writes are atomic on AWS; moto checks the condition and writes
without a lock, so two concurrent requests can both pass it. Likewise two concurrent
StartExecution calls with one name can both succeed. The fills run those writes under
:data:`WRITE_LOCK`, one at a time (re-entrant: a write may start an execution).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

WRITE_LOCK = threading.RLock()


def serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` run under :data:`WRITE_LOCK`."""

    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with WRITE_LOCK:
            return method(*args, **kwargs)

    return locked
