"""moto's request dispatch: what it lists on every request, listed once.

* **A response class's action names.** moto 5.2.5 finds the method for every request's
  action by listing the public functions of its response class with
  ``inspect.getmembers`` (``BaseResponse.call_action``): for EC2's class, hundreds of
  members sorted on every call; 3% of a test run's CPU. The names of a class's functions
  do not change while the local cloud runs (its fills are all in place before it serves
  a request), so each class's list is kept here, from this install to the next
  uninstall: a new install starts with none.
* **moto's service packages.** To find the service a request is for, moto's server asks
  whether the request's host names one of its packages (``list_of_moto_modules``), which
  lists moto's directory and tests each of its 174 entries with a ``stat``, up to twice a
  request: about 0.4 ms of a 3 ms request. Installed packages do not change while the
  local cloud runs; the list is read once per install.
* **werkzeug URL rules, compiled one thread at a time.** moto builds a service's Flask app
  on the service's first request, and its protocol router on its first REST request, on
  that request's thread; both compile werkzeug URL rules, which calls ``ast.parse``.
  CPython 3.11 counts AST recursion depth in state every thread shares (gh-106905), so
  two parses at once can fail with ``SystemError: AST constructor recursion depth
  mismatch``, and the request with a 500 (one build of a test run failed so). Both are
  built under :data:`COMPILE_LOCK`: routers by the fill below, apps by
  :func:`serialised` around the app factory the local cloud hands moto's dispatcher.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from amiforge.localcloud.fills import Fill

COMPILE_LOCK = threading.Lock()


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


def serialised(create_app: Callable[..., Any]) -> Callable[..., Any]:
    """``create_app`` (moto's ``create_backend_app``) under :data:`COMPILE_LOCK`."""

    def create_backend_app(service: Any) -> Any:
        with COMPILE_LOCK:
            return create_app(service)

    return create_backend_app


def _router_under_lock(original: Callable[[Any, str], Any]) -> Callable[[Any, str], Any]:
    def _get_router(self: Any, protocol: str) -> Any:
        built = self._routers.get(protocol)
        if built is not None:
            return built
        with COMPILE_LOCK:
            return original(self, protocol)

    return _get_router


FILLS = [
    Fill("core.action-names-once", "moto.core.responses", "method_names_from_class",
         _method_names, "9dbac89d082b"),
    Fill("core.service-packages-once", "moto.backends", "list_of_moto_modules",
         _modules_once, "4f741a10b065"),
    Fill("core.routers-compiled-one-at-a-time", "moto.core.routing:ServiceOperationRouter",
         "_get_router", _router_under_lock, "6372d7e3570a"),
]
