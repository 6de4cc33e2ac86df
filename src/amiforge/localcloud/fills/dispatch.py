"""moto's request dispatch: what it lists on every request, listed once.

* **A response class's action names.** moto 5.2.5 finds the method for every request's action by listing the public functions
of its response class with ``inspect.getmembers`` (``BaseResponse.call_action``): for
EC2's class, hundreds of members sorted on every call; 3% of a test run's CPU. The
  names of a class's functions do not change while the local cloud runs (its fills are
  all in place before it serves a request), so each class's list is kept here, from this
  install to the next uninstall: a new install starts with none.
* **moto's service packages.** To find the service a request is for, moto's server asks
  whether the request's host names one of its packages (``list_of_moto_modules``), which
  lists moto's directory and tests each of its 174 entries with a ``stat``, up to twice a
  request: about 0.4 ms of a 3 ms request. Installed packages do not
  change while the local cloud runs; the list is read once per install.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
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


def _modules_once(original: Callable[[], Iterable[str]]) -> Callable[[], frozenset[str]]:
    modules: list[frozenset[str]] = []
    lock = threading.Lock()

    def list_of_moto_modules() -> frozenset[str]:
        # the one caller asks ``host in list_of_moto_modules()``
        if not modules:
            with lock:
                if not modules:
                    modules.append(frozenset(original()))
        return modules[0]

    return list_of_moto_modules


FILLS = [
    Fill("core.action-names-once", "moto.core.responses", "method_names_from_class",
         _method_names, "9dbac89d082b"),
    Fill("core.service-packages-once", "moto.backends", "list_of_moto_modules",
         _modules_once, "4f741a10b065"),
]
