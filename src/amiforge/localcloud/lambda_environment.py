"""One Lambda execution environment: a bootstrap process, its variables, its logs.

:class:`ExecutionEnvironment` serves invocations one at a time over the process's pipes
(JSON lines); :func:`environment_variables` is what Lambda sets for the function, with
``AWS_ENDPOINT_URL`` pointing back at the emulator and nothing inherited from the host;
:func:`save_logs` stores an invocation's output as CloudWatch Logs would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

from amiforge.localcloud.lambda_forkserver import kill_group

log = logging.getLogger(__name__)


class ExecutionEnvironment:
    """One execution environment: a bootstrap process serving invocations one by one."""

    def __init__(self, key: tuple[Any, ...], proc: Any, stream: str,
                 marker: str = "", function_name: str = "") -> None:
        self.key = key
        self.proc = proc
        self.stream = stream
        self.marker = marker            # its AWS_SDK_UA_APP_ID (see .faults)
        self.function_name = function_name
        self.used = time.monotonic()
        self.cold = True
        self.mutated = False            # made a state-changing AWS call this invocation
        self._buffer = b""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, envelope: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(envelope) + "\n").encode())
        self.proc.stdin.flush()

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """The invocation's outcome; None on timeout; EOFError if the process died."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            # poll, not select: select refuses descriptors past 1,023, and a busy local
            # cloud holds more (ValueError read as a dead environment: "exit status -9").
            waiting = select.poll()
            waiting.register(fd, select.POLLIN)
            if waiting.poll(remaining * 1000):
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise EOFError("the execution environment exited")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        outcome: dict[str, Any] = json.loads(line)
        return outcome

    def kill(self) -> None:
        kill_group(self.proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def environment_variables(fn: Any, *, task_dir: Path, runtime_dir: Path, endpoint: str,
                          stream: str, marker: str = "") -> dict[str, str]:
    """What the function's process sees: its variables plus what Lambda sets."""
    env = {str(k): str(v) for k, v in (fn.environment_vars or {}).items()}
    env.update({
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(task_dir),
        "LAMBDA_RUNTIME_DIR": str(runtime_dir),
        "_HANDLER": fn.handler or "",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time or 'python3.12'}",
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
        "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        "AWS_REGION": fn.region,
        "AWS_DEFAULT_REGION": fn.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ENDPOINT_URL": endpoint,
        # Never look for real credentials or the instance metadata service.
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        # botocore puts it in the User-Agent (app/...): how the local cloud's fault
        # injector tells which execution environment made a call.
        "AWS_SDK_UA_APP_ID": marker,
    })
    return env


def environment_key(fn: Any, task_dir: Path, opt_dirs: list[str]) -> tuple[Any, ...]:
    """Invocations with the same key may share a warm environment."""
    variables = json.dumps({k: str(v) for k, v in (fn.environment_vars or {}).items()},
                           sort_keys=True)
    return (fn.function_arn, str(task_dir), tuple(opt_dirs), fn.handler, variables,
            str(fn.timeout), str(fn.memory_size), fn.region)


def invocation_envelope(fn: Any, event: Any, *, request_id: str, log_path: Path,
                        stream: str, deadline: float) -> dict[str, Any]:
    """What the bootstrap reads for one invocation: the event and Lambda's context."""
    return {
        "event": event,
        "log_path": str(log_path),
        "context": {
            "function_name": fn.function_name,
            "function_version": "$LATEST",
            "invoked_function_arn": fn.function_arn,
            "memory_limit_in_mb": fn.memory_size,
            "aws_request_id": request_id,
            "log_group_name": fn.logs_group_name,
            "log_stream_name": stream,
            "deadline_ms": int(deadline * 1000),
        },
    }


def invocation_log(request_id: str, output: str, duration_ms: float, memory_size: Any,
                   cold: bool) -> str:
    """An invocation's log as Lambda writes it: START, the output, END and REPORT."""
    start = " (cold start)" if cold else ""
    return (f"START RequestId: {request_id} Version: $LATEST\n{output}"
            f"END RequestId: {request_id}\n"
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {int(duration_ms) + 1} ms\tMemory Size: {memory_size} MB"
            f"{start}\n")


def read_log(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        path.unlink()
    except OSError:
        return ""
    return text if not text or text.endswith("\n") else text + "\n"


def save_logs(fn: Any, stream: str, text: str) -> None:
    try:
        backend = fn.logs_backend
        from moto.logs.exceptions import ResourceAlreadyExistsException

        backend.ensure_log_group(fn.logs_group_name)
        with contextlib.suppress(ResourceAlreadyExistsException):  # a warm environment's
            backend.create_log_stream(fn.logs_group_name, stream)
        stamp = int(time.time() * 1000)
        events = [{"timestamp": stamp, "message": line} for line in text.splitlines() if line]
        backend.put_log_events(fn.logs_group_name, stream, events)
    except Exception:  # logs are a convenience; never fail an invoke over them
        log.exception("could not store logs of %s", fn.function_name)

