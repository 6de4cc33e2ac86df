"""moto's request dispatch: a response class's action names listed once, not per request.

moto 5.2.5 finds the method for every request's action by listing the public functions
of its response class with ``inspect.getmembers`` (``BaseResponse.call_action``): for
EC2's class, hundreds of members sorted on every call; 3% of a test run's CPU. The
names of a class's functions do not change while the local cloud runs (its fills are all
in place before it serves a request), so each class's list is kept here, from this
install to the next uninstall: a new install starts with none.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from amiforge.localcloud.fills import Fill


def _method_names(original: Callable[[object], list[str]]) -> Callable[[object], list[str]]:
    names: dict[object, frozenset[str]] = {}
    lock = threading.Lock()

    def method_names_from_class(clazz: object) -> Any:
        # call_action only asks ``action in names``: a set answers that without a scan
        found = names.get(clazz)
        if found is None:
            with lock:
                found = names.setdefault(clazz, frozenset(original(clazz)))
        return found

    return method_names_from_class


FILLS = [
    Fill("core.action-names-once", "moto.core.responses", "method_names_from_class",
         _method_names, "9dbac89d082b"),
]
