"""A pre-initialised parent for local Lambda execution environments (a fork server).

A cold start of a fresh interpreter spends most of its time starting Python and
importing boto3 and botocore, before the function's own code is even looked at. This
program does that once: started as ``python -I -S lambda_zygote.py SOCKET RUNTIME_DIR
STATUS_DIR`` by :mod:`amiforge.localcloud.lambda_runtime`, it puts only the standard
library and the runtime dir on ``sys.path`` (exactly what a fresh environment has before
its code is added), imports the runtime's packages (:data:`PRELOAD`), freezes the heap
(so the children share those pages instead of copying them on the collector's first
pass), and waits on a Unix socket.

Each request carries the new environment's stdin and stdout (as file descriptors, over
``SCM_RIGHTS``) and ``{"task_dir", "opt_dirs", "env"}``. The parent forks; the child
starts its own session (so a timeout can kill it with its children), takes those
descriptors as 0 and 1 and ``/dev/null`` as 2, replaces its whole environment with the
function's, and enters :func:`lambda_bootstrap.serve`: from there it is the same
execution environment a fresh interpreter would be (own process, own variables, the
bundle and its layers first on the path). The parent answers with the child's pid.

Most of a cold start with a client is botocore parsing its JSON models (EC2's is
megabytes). The parent creates one client of each service in :data:`WARM_SERVICES` and
keeps what its data loader parsed; a child's data loaders start with that cache (only
loaders with botocore's default search path, i.e. no ``AWS_DATA_PATH``), so they hand
out the same data the files hold without parsing them again, exactly as a second
client in a warm environment gets them from its loader's cache.

Children are reaped here (SIGCHLD); each one's exit status is written to
``STATUS_DIR/<pid>`` so the runtime can report it (``Runtime.ExitError``).

The server ends with the local cloud that started it: it looks every
:data:`PARENT_CHECK_SECONDS` whether its parent is still the process that started it, and
exits when it is not. A local cloud that was killed (``kill -9``, a test run's timeout)
cannot stop its fork server itself, which otherwise waited on its socket for ever.

A function whose bundle ships its own copy of a preloaded package would get the
preloaded one here; the runtime starts such functions as fresh interpreters instead.

Standard library only until the runtime dir is on the path.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import signal
import socket
import sys
import time
from typing import Any

# What AWS's Python runtime provides and nearly every function imports.
PRELOAD = ("boto3", "boto3.session", "botocore.session", "botocore.client",
           "botocore.endpoint", "botocore.parsers", "botocore.serialize",
           "botocore.regions", "botocore.credentials", "botocore.config",
           "botocore.exceptions", "urllib3", "dateutil.parser", "jmespath")
# Services whose models the parent parses once (amiforge's functions and the usual ones).
WARM_SERVICES = ("ec2", "dynamodb", "ssm", "sqs", "sns", "stepfunctions", "cloudformation",
                 "s3", "sts", "autoscaling", "events", "lambda", "logs", "iam")
_MAX_REQUEST = 1 << 20
PARENT_CHECK_SECONDS = 1.0


def _warm_botocore() -> None:
    """Parse the common models once; new default loaders start with them (see above)."""
    # Imported by name: botocore has no type hints (and this runs in the fork server).
    loaders: Any = importlib.import_module("botocore.loaders")
    session: Any = importlib.import_module("botocore.session")

    warm = session.Session()
    for service in WARM_SERVICES:
        try:
            warm.create_client(service, region_name="us-east-1", aws_access_key_id="warm",
                               aws_secret_access_key="warm")
        except Exception:  # noqa: BLE001 - a model this botocore lacks: no cache for it
            continue
    parsed = dict(warm.get_component("data_loader")._cache)
    original = loaders.create_loader

    def create_loader(search_path_string: str | None = None) -> Any:
        loader = original(search_path_string)
        if search_path_string is None:
            loader._cache.update(parsed)
        return loader

    loaders.create_loader = create_loader
    session.create_loader = create_loader


def _reap(status_dir: str) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        path = os.path.join(status_dir, str(pid))
        with open(path + ".tmp", "w") as out:
            out.write(str(os.waitstatus_to_exitcode(status)))
        os.replace(path + ".tmp", path)


def _child(request: dict[str, Any], fds: list[int], runtime_dir: str,
           stdlib: list[str]) -> None:
    """Become the execution environment; never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        os.dup2(fds[0], 0)
        os.dup2(fds[1], 1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        for fd in (*fds, devnull):
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        time.tzset()
        import lambda_bootstrap  # type: ignore[import-not-found]  # the runtime dir's copy

        sys.argv = [lambda_bootstrap.__file__, request["task_dir"], runtime_dir,
                    *request["opt_dirs"]]
        code = lambda_bootstrap.serve(request["task_dir"], runtime_dir, request["opt_dirs"],
                                      stdlib)
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # exiting anyway
                stream.flush()
        os._exit(code)


def main() -> int:
    socket_path, runtime_dir, status_dir = sys.argv[1:4]
    stdlib = [p for p in sys.path[1:] if p]
    sys.path[:] = [*stdlib, runtime_dir]
    import lambda_bootstrap  # noqa: F401  # type: ignore[import-not-found]

    for name in PRELOAD:
        __import__(name)
    _warm_botocore()
    gc.collect()
    gc.freeze()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    server.listen(64)
    signal.signal(signal.SIGCHLD, lambda *_: _reap(status_dir))
    parent = os.getppid()
    server.settimeout(PARENT_CHECK_SECONDS)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        try:
            conn, _ = server.accept()
        except TimeoutError:
            if os.getppid() != parent:  # the local cloud is gone, so is its fork server
                return 0
            continue
        conn.settimeout(None)
        with conn:
            message, fds, _, _ = socket.recv_fds(conn, _MAX_REQUEST, 2)
            while message and not message.endswith(b"\n") and len(message) < _MAX_REQUEST:
                more = conn.recv(_MAX_REQUEST)  # one JSON line, however it was cut
                if not more:
                    break
                message += more
            if len(fds) != 2:
                for fd in fds:
                    os.close(fd)
                continue
            request = json.loads(message)
            pid = os.fork()
            if pid == 0:
                server.close()
                conn.close()
                _child(request, fds, runtime_dir, stdlib)
            for fd in fds:
                os.close(fd)
            conn.sendall(f"{pid}\n".encode())


if __name__ == "__main__":
    sys.exit(main())
