"""The local cloud's HTTP server: moto's WSGI app over connections that stay open.

moto serves itself with werkzeug's development server, which closes the connection after
every response: each call of every client (the CLI, a test, a Lambda function, Step
Functions' tasks) then pays a new TCP connection, a new server thread, and werkzeug's
10 ms drain of the closed request. Measured side by side in one process
(``bench/local_requests.py``, on this project's 2-core machine), an SSM GetParameter cost
2.7 ms of CPU, client and server together, over a new connection each time, and 2.05 ms
over a kept one. cheroot (the
server of CherryPy) keeps HTTP/1.1 connections open and hands an idle one back to a
selector, so a thread is busy only while it answers a request.

Two things the local cloud needs beyond cheroot's defaults:

* **A pool that grows.** A Lambda ``Invoke`` holds its thread for as long as the function
  runs, and the function's own calls need threads too. A fixed pool could have every
  thread waiting on a function whose calls wait in the queue behind them. :class:`_Pool`
  starts one more thread whenever a connection arrives and at most one thread is free.
* **Headers as moto's own server hands them over.** werkzeug drops a header with an
  underscore in its name (``X_Foo`` would pass for ``X-Foo``), and moto's request handler
  puts back only S3's ``x-amz-meta-*`` ones, recording their spelling so an object's
  metadata keeps its key (``MotoRequestHandler.make_environ``). :class:`_Gateway` does the
  same; a dashed header always wins over an underscored one of the same WSGI name.
"""

from __future__ import annotations

import logging
from typing import Any

from cheroot import wsgi
from cheroot.workers import threadpool
from moto.core.request import (
    PRESERVED_HEADER_NAMES_ENVIRON_KEY,
    environ_key_for_header,
    should_preserve_original_header_name,
)

log = logging.getLogger(__name__)

THREADS = 16           # started with the server; more are started as needed
KEEP_ALIVE_LIMIT = 512  # idle connections kept open (each client keeps up to 10)
IDLE_TIMEOUT = 30       # seconds a kept connection may stay idle before it is closed
STOP_TIMEOUT = 2        # seconds stop waits for threads still answering


class _Pool(threadpool.ThreadPool):
    """cheroot's thread pool, one thread larger whenever a connection would wait."""

    def put(self, obj: Any) -> None:
        # put runs on the server's one accepting thread: nothing else adds work meanwhile.
        # One spare thread more than the queue needs: a thread that has just taken a
        # connection still counts as idle until it marks the connection its own.
        waiting = self._queue.qsize()  # type: ignore[attr-defined]  # cheroot's own queue
        if self.idle - waiting <= 1:
            self.grow(1)
        super().put(obj)


class _Gateway(wsgi.Gateway_10):
    """WSGI 1.0, with header names handled as moto's request handler handles them."""

    def get_environ(self) -> dict[str, Any]:  # type: ignore[override]  # stub says None
        environ: dict[str, Any] = super().get_environ()  # type: ignore[no-untyped-call]
        headers = [(name.decode("iso-8859-1"), value.decode("iso-8859-1"))
                   for name, value in self.req.inheaders.items()]
        dashed = {environ_key_for_header(name): value for name, value in headers
                  if "_" not in name}
        preserved: dict[str, str] = {}
        for name, value in headers:
            if "_" not in name:
                continue
            key = environ_key_for_header(name)
            if key in dashed:
                environ[key] = dashed[key]
            elif should_preserve_original_header_name(name):
                environ[key] = value
                preserved.setdefault(key, name.lower())
            else:
                environ.pop(key, None)
        environ[PRESERVED_HEADER_NAMES_ENVIRON_KEY] = preserved
        return environ


class Server(wsgi.Server):
    """``Server(port, app)``: bound on 127.0.0.1 by :meth:`prepare` (port 0 picks one),
    answered by :meth:`serve` until :meth:`stop`."""

    keep_alive_conn_limit = KEEP_ALIVE_LIMIT

    def __init__(self, port: int, app: Any) -> None:
        super().__init__(("127.0.0.1", port), app, numthreads=THREADS,
                         timeout=IDLE_TIMEOUT, shutdown_timeout=STOP_TIMEOUT,
                         request_queue_size=128)
        self.gateway = _Gateway
        self.requests = _Pool(self, min=THREADS)

    @property
    def port(self) -> int:
        return int(self.bind_addr[1])

    def error_log(self, msg: str = "", level: int = logging.INFO,
                  traceback: bool = False) -> None:
        """To logging, not straight to stderr (cheroot's default): a client that hangs up
        is an INFO line, an error in the app an ERROR with its traceback."""
        log.log(level, "%s", msg, exc_info=traceback)
