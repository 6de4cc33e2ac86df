"""Lambda without Docker: functions run in isolated Python processes, warm like AWS's.

moto calls ``LambdaFunction._invoke_lambda(event) -> (payload, errored, logs)`` for every
invoke (API, Step Functions task, CloudFormation custom resource); shipped, it needs
Docker. The fills in :mod:`.fills.awslambda` send it to :meth:`LambdaRuntime.invoke` of the
runtime given to :func:`attach`:

* the zip (cached per code hash) and its layers are extracted under a private work dir
  (:mod:`.lambda_code`);
* an *execution environment* (:mod:`.lambda_environment`) is a ``lambda_bootstrap.py`` process (forked from a
  pre-initialised parent, :mod:`.lambda_zygote`, that has imported boto3 once; or, with
  ``fork_server=False``, a fresh ``python -I -S`` interpreter) whose
  ``sys.path`` holds only the zip, its layers, the standard library and a *runtime dir*
  of symlinks to the packages AWS's Python runtime provides (:data:`RUNTIME_PACKAGES`):
  a bundle that forgot a dependency fails here as it would on AWS;
* its environment is the function's variables plus what Lambda sets, with
  ``AWS_ENDPOINT_URL`` pointing back at the emulator and dummy credentials, and nothing
  inherited from the host (no real credentials can leak in);
* as on AWS, an environment serves one invocation at a time and is kept warm for the
  next one of the same function and configuration (module-level clients are reused);
  ``warm=False`` makes every invocation a cold start in a fresh process;
* an invocation is cut at the function's ``Timeout`` (``Sandbox.Timedout``, as AWS) and
  its environment is discarded, as is one whose handler failed to load;
* an exception becomes ``{"errorType": <class name>, "errorMessage": ...}`` with
  ``FunctionError`` set, which is what Step Functions Retry/Catch match;
* stdout/stderr become the function's CloudWatch log stream (one stream per
  environment, with START/END/REPORT lines);
* each environment gets an ``AWS_SDK_UA_APP_ID`` marker (``lc-fn-<id>``) that botocore
  puts in its User-Agent, so the fault injector (:mod:`.faults`) can tell which
  environment made a call and kill it (:meth:`LambdaRuntime.crash`);
* an environment idle for ``idle_seconds`` is reaped by a background thread (AWS reclaims
  idle environments too), and at most ``max_idle`` are kept, so a local cloud that runs
  builds for hours holds a bounded number of processes;
* ``max_concurrency`` caps the environments of one function; further invocations wait
  for one (AWS would throttle; waiting only adds latency, and a small machine does not
  fork a process per build per step in a burst).

``InvocationType=Event`` returns 202 at once and runs the function on a thread, as AWS's
asynchronous invoke does (moto runs it inline).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amiforge.localcloud.lambda_code import (
    BOOTSTRAP,
    RUNTIME_PACKAGES,
    CodeStore,
    build_runtime_dir,
)
from amiforge.localcloud.lambda_environment import (
    ExecutionEnvironment,
    environment_key,
    environment_variables,
    invocation_envelope,
    invocation_log,
    read_log,
    save_logs,
)
from amiforge.localcloud.lambda_forkserver import ForkedProcess, ForkServer, kill_group

__all__ = ["DEFAULT_IDLE_SECONDS", "RUNTIME_PACKAGES", "LambdaRuntime", "attach", "attached",
           "invoke_async"]

log = logging.getLogger(__name__)

_LOG_TAIL_BYTES = 4096
# How long an unused execution environment is kept warm. AWS keeps one for minutes; a
# local cloud on a laptop keeps it shorter, since each is a Python process with boto3.
DEFAULT_IDLE_SECONDS = 120.0



class LambdaRuntime:
    """Runs functions for one local cloud; owns extracted code and warm environments."""

    def __init__(self, endpoint: str, *, warm: bool = True,
                 max_idle: int = 32, idle_seconds: float = DEFAULT_IDLE_SECONDS,
                 max_concurrency: int | None = None, fork_server: bool = True) -> None:
        self.endpoint = endpoint
        self.warm = warm
        self.fork_server = fork_server
        self._forker: ForkServer | None = None
        self._forker_lock = threading.Lock()
        self._preloaded: frozenset[str] = frozenset()
        self.max_idle = max_idle
        self.idle_seconds = idle_seconds
        # At most this many environments per function at once (None: no limit); more
        # invocations wait for one. Keeps a burst of builds from forking a process per
        # build per step on a small machine (see set_max_concurrency).
        self.max_concurrency = max_concurrency
        self.concurrency_by_function: dict[str, int] = {}  # overrides, by function name
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._by_marker: dict[str, ExecutionEnvironment] = {}
        self.workdir = Path(tempfile.mkdtemp(prefix="amiforge-lambda-"))
        self.runtime_dir = self.workdir / "runtime"
        (self.workdir / "logs").mkdir()
        self._lock = threading.Lock()
        self._idle: list[ExecutionEnvironment] = []
        self._busy: set[ExecutionEnvironment] = set()
        self._closed = False
        self._preloaded = build_runtime_dir(self.runtime_dir)
        self.code = CodeStore(self.workdir)
        self._stop_reaper = threading.Event()
        self._reaper = threading.Thread(target=self._reap_forever, daemon=True,
                                        name="amiforge-lambda-reaper")
        self._reaper.start()

    def _reap_forever(self) -> None:
        while not self._stop_reaper.wait(min(max(self.idle_seconds / 4, 0.5), 15.0)):
            self.reap_idle()

    def reap_idle(self) -> int:
        """End every environment idle for longer than ``idle_seconds`` (or dead); returns
        how many were ended."""
        now = time.monotonic()
        with self._lock:
            expired = [e for e in self._idle
                       if now - e.used > self.idle_seconds or not e.alive()]
            self._idle = [e for e in self._idle if e not in expired]
        for environment in expired:
            environment.kill()
            self._forget(environment)
        return len(expired)

    def stats(self) -> dict[str, int]:
        """Environments now: idle (warm, waiting) and busy (serving an invocation)."""
        with self._lock:
            return {"idle": len(self._idle), "busy": len(self._busy)}

    def close(self) -> None:
        self._stop_reaper.set()
        with self._lock:
            self._closed = True
            environments = [*self._idle, *self._busy]
            self._idle.clear()
        for environment in environments:
            environment.kill()
        with self._forker_lock:
            if self._forker is not None:
                self._forker.close()
                self._forker = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def discard_warm(self) -> None:
        """End every idle environment (the next invocations are cold starts)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for environment in idle:
            environment.kill()
            self._forget(environment)


    # -- environments ----------------------------------------------------------------

    def _spawn(self, key: tuple[Any, ...], fn: Any, task_dir: Path,
               opt_dirs: list[str]) -> ExecutionEnvironment:
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        marker = f"lc-fn-{uuid.uuid4().hex[:16]}"
        env = environment_variables(fn, task_dir=task_dir, runtime_dir=self.runtime_dir,
                                    endpoint=self.endpoint, stream=stream, marker=marker)
        proc: Any = None
        if self.fork_server and not self._ships_preloaded(task_dir, opt_dirs):
            proc = self._fork(task_dir, opt_dirs, env)
        if proc is None:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(self.runtime_dir / BOOTSTRAP.name),
                 str(task_dir), str(self.runtime_dir), *opt_dirs],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                env=env, cwd=task_dir, bufsize=0,
                start_new_session=True,  # so a timeout kills the handler's children too
            )
        environment = ExecutionEnvironment(key, proc, stream, marker, fn.function_name)
        with self._lock:
            self._by_marker[marker] = environment
        return environment

    def _ships_preloaded(self, task_dir: Path, opt_dirs: list[str]) -> bool:
        for directory in (task_dir, *map(Path, opt_dirs)):
            for name in self._preloaded:
                if (directory / name).exists() or (directory / f"{name}.py").exists():
                    return True
        return False

    def _fork(self, task_dir: Path, opt_dirs: list[str],
              env: dict[str, str]) -> ForkedProcess | None:
        """A child of the fork server, or None (the caller starts a fresh interpreter)
        when the server cannot be had: started again once if it died."""
        with self._forker_lock:
            if self._closed:
                return None
            if self._forker is not None and not self._forker.alive():
                self._forker.close()
                self._forker = None
            if self._forker is None:
                try:
                    self._forker = ForkServer(self.runtime_dir, self.workdir)
                except (OSError, RuntimeError) as err:
                    log.warning("Lambda fork server unavailable (%s): fresh interpreters", err)
                    self.fork_server = False
                    return None
            forker = self._forker
        try:
            return forker.spawn(task_dir, opt_dirs, env)
        except OSError as err:
            log.warning("Lambda fork server failed (%s): a fresh interpreter", err)
            return None

    def _acquire(self, key: tuple[Any, ...], fn: Any, task_dir: Path,
                 opt_dirs: list[str]) -> ExecutionEnvironment:
        expired: list[ExecutionEnvironment] = []
        chosen = None
        with self._lock:
            if self._closed:
                raise RuntimeError("the local cloud's Lambda runtime is closed")
            now = time.monotonic()
            for environment in list(self._idle):
                if now - environment.used > self.idle_seconds or not environment.alive():
                    self._idle.remove(environment)
                    expired.append(environment)
                elif chosen is None and environment.key == key:
                    self._idle.remove(environment)
                    chosen = environment
            if chosen is not None:
                self._busy.add(chosen)
        for environment in expired:
            environment.kill()
            self._forget(environment)
        if chosen is None:
            chosen = self._spawn(key, fn, task_dir, opt_dirs)
            with self._lock:
                self._busy.add(chosen)
        return chosen

    def _release(self, environment: ExecutionEnvironment, keep: bool) -> None:
        evicted: list[ExecutionEnvironment] = []
        with self._lock:
            self._busy.discard(environment)
            if keep and self.warm and not self._closed and environment.alive():
                environment.used = time.monotonic()
                environment.cold = False
                self._idle.append(environment)
                while len(self._idle) > self.max_idle:
                    evicted.append(self._idle.pop(0))  # the least recently used
            else:
                evicted.append(environment)
        for stale in evicted:
            stale.kill()
            self._forget(stale)

    # -- concurrency and fault hooks ---------------------------------------------------

    def set_max_concurrency(self, limit: int | None,
                            functions: dict[str, int] | None = None) -> None:
        """Environments per function at once from now on (None: unlimited); ``functions``
        overrides the limit for the functions it names."""
        for value in [limit, *(functions or {}).values()]:
            if value is not None and value < 1:
                raise ValueError(f"max_concurrency must be at least 1, got {value}")
        with self._lock:
            self.max_concurrency = limit
            self.concurrency_by_function = dict(functions or {})
            self._slots = {}  # invocations holding an old slot release it into the old one

    def _slot(self, fn: Any) -> threading.BoundedSemaphore | None:
        with self._lock:
            limit = self.concurrency_by_function.get(fn.function_name, self.max_concurrency)
            if limit is None:
                return None
            slot = self._slots.get(fn.function_arn)
            if slot is None:
                slot = self._slots[fn.function_arn] = threading.BoundedSemaphore(limit)
            return slot

    def _forget(self, environment: ExecutionEnvironment) -> None:
        with self._lock:
            self._by_marker.pop(environment.marker, None)

    def function_of(self, marker: str) -> str | None:
        """The function whose environment carries ``marker``."""
        with self._lock:
            environment = self._by_marker.get(marker)
        return environment.function_name if environment else None

    def first_mutation(self, marker: str) -> str | None:
        """The function's name if this is its invocation's first state-changing call."""
        with self._lock:
            environment = self._by_marker.get(marker)
            if environment is None or environment.mutated:
                return None
            environment.mutated = True
            return environment.function_name

    def crash(self, marker: str) -> bool:
        """Kill the environment's process (its invocation fails with Runtime.ExitError)."""
        with self._lock:
            environment = self._by_marker.get(marker)
        if environment is None or not environment.alive():
            return False
        kill_group(environment.proc)
        return True

    # -- invoke ----------------------------------------------------------------------

    def invoke(self, fn: Any, event: Any) -> tuple[str, bool, str]:
        """Run one invocation; returns moto's ``(payload, errored, log_tail)``."""
        slot = self._slot(fn)
        if slot is not None:
            slot.acquire()
        try:
            return self._invoke(fn, event)
        finally:
            if slot is not None:
                slot.release()

    def _invoke(self, fn: Any, event: Any) -> tuple[str, bool, str]:
        request_id = str(uuid.uuid4())
        timeout = float(fn.timeout or 3)
        task_dir = self.code.task_dir(fn)
        opt_dirs = self.code.layer_dirs(fn)
        started = time.time()
        environment = self._acquire(environment_key(fn, task_dir, opt_dirs), fn, task_dir, opt_dirs)
        cold = environment.cold
        environment.mutated = False
        log_path = self.workdir / "logs" / f"{request_id}.log"
        envelope = invocation_envelope(fn, event, request_id=request_id, log_path=log_path,
                                       stream=environment.stream,
                                       deadline=started + timeout)
        try:
            environment.send(envelope)
            outcome = environment.receive(max(0.0, started + timeout - time.time()))
        except (OSError, EOFError, ValueError):
            outcome = {"exited": True}
        keep, note = False, ""
        if outcome is None:
            message = f"Task timed out after {timeout:.2f} seconds"
            payload = json.dumps({"errorType": "Sandbox.Timedout",
                                  "errorMessage": f"RequestId: {request_id} Error: {message}"})
            errored = True
            note = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%fZ} {request_id} {message}\n"
        elif outcome.get("exited"):
            environment.kill()
            payload = json.dumps({
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: "
                                f"exit status {environment.proc.returncode}"})
            errored = True
        else:
            payload, errored = outcome["payload"], not outcome["ok"]
            keep = not outcome.get("fatal")
        self._release(environment, keep)
        duration_ms = (time.time() - started) * 1000
        start = " (cold start)" if cold else ""
        logs = invocation_log(request_id, read_log(log_path) + note, duration_ms,
                              fn.memory_size, cold)
        save_logs(fn, environment.stream, logs)
        log.info("lambda %s %s in %.0f ms%s", fn.function_name,
                 "FAILED" if errored else "ok", duration_ms, start)
        tail = logs.encode()[-_LOG_TAIL_BYTES:].decode("utf-8", errors="replace")
        return payload, errored, tail




# -- the runtime moto's Lambda reaches (through the fills in .fills.awslambda) ---------

_active: LambdaRuntime | None = None


def attach(runtime: LambdaRuntime | None) -> None:
    """Make ``runtime`` the one moto's invokes reach (None: they fail until the next)."""
    global _active
    _active = runtime


def attached() -> LambdaRuntime | None:
    return _active


_in_flight: set[str] = set()
_in_flight_lock = threading.Lock()


def invoke_async(fn: Any, event: Any, *, one_at_a_time: str | None = None) -> bool:
    """AWS's asynchronous invoke: run on a thread, log a failure, never raise.

    ``one_at_a_time`` (a schedule rule's target): while an invocation made under that key
    is still waiting for an environment or running, another is dropped, and False is
    returned. A scheduled check that ticks faster than this machine runs it (a fast
    clock, many stacks on two cores) then skips ticks instead of piling up a thread per
    tick, each waiting for the function's environments: thousands, once, and the whole
    local cloud slowed to a stop. The checks are idempotent scans; a skipped tick only
    delays the next look. On AWS each tick would run in its own environment.
    """
    if one_at_a_time is not None:
        with _in_flight_lock:
            if one_at_a_time in _in_flight:
                log.info("async invoke of %s skipped: the last one for %s has not ended",
                         fn.function_name, one_at_a_time)
                return False
            _in_flight.add(one_at_a_time)

    def run() -> None:
        try:
            payload, errored, _ = fn._invoke_lambda(event=event)
            if errored:
                log.warning("async invoke of %s failed: %s", fn.function_name, payload[:500])
        except Exception:
            log.exception("async invoke of %s crashed", fn.function_name)
        finally:
            if one_at_a_time is not None:
                with _in_flight_lock:
                    _in_flight.discard(one_at_a_time)

    try:
        threading.Thread(target=run, name=f"invoke-{fn.function_name}", daemon=True).start()
    except BaseException:  # no thread: the key must not stay taken, or the rule never fires
        if one_at_a_time is not None:
            with _in_flight_lock:
                _in_flight.discard(one_at_a_time)
        raise
    return True

