"""The runtime's side of the fork server (:mod:`.lambda_zygote`): start it, ask it for an
execution environment, and treat that child like a ``Popen`` of our own.

A forked environment is the server's child, not ours: its exit status comes from the
status file the server writes when it reaps it (``Runtime.ExitError`` reports it), and
its death from a pidfd opened when it was made: a pid names a process only until it is
reaped, and pids wrap (at 32,768 on many machines), so a check by pid of a process that
ended long ago may find another. Its stdin and stdout are pipes this process made and handed over
with ``SCM_RIGHTS``, so reading and writing it is the same as for a ``Popen``.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ZYGOTE = Path(__file__).with_name("lambda_zygote.py")


def kill_group(proc: Any) -> None:
    """SIGKILL the process group of a process that has not ended. Nothing for one that
    has: once reaped, its pid (and so its group id) may be another process's, and a
    kill by number would end that one, another function's environment, say."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def zygote_preload() -> tuple[str, ...]:
    """The fork server's PRELOAD, read without importing it (it is a script)."""
    tree = ast.parse(ZYGOTE.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PRELOAD":
            return tuple(ast.literal_eval(node.value))
    return ()


class ForkedProcess:
    """What :class:`_Environment` needs of a ``Popen``, for a process the fork server
    made: it is the server's child, so its exit status comes from the server's status
    file."""

    def __init__(self, pid: int, stdin: Any, stdout: Any, status_dir: Path) -> None:
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout
        self._status = status_dir / str(pid)
        # A status file of an earlier process with this pid (pids wrap) is not this one's.
        self._status.unlink(missing_ok=True)
        self.returncode: int | None = None
        try:  # names this process, not whichever has its pid later
            self._pidfd: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):  # not Linux 5.3+, or already gone
            self._pidfd = None

    def _ended(self) -> bool:
        if self._pidfd is None:
            return not Path(f"/proc/{self.pid}").exists()
        ended = select.poll()  # not select: descriptors past 1,023 are refused there
        ended.register(self._pidfd, select.POLLIN)  # readable once it exits
        return bool(ended.poll(0))

    def _status_soon(self) -> int:
        """The status of an ended child, written by the server as it reaps it; -SIGKILL
        if the server is gone and never writes it."""
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            try:
                return int(self._status.read_text())
            except (OSError, ValueError):
                time.sleep(0.01)
        return -signal.SIGKILL

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                self.returncode = int(self._status.read_text())
            except (OSError, ValueError):
                if self._ended():
                    self.returncode = self._status_soon()
            if self.returncode is not None and self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
            time.sleep(0.005)
        return self.returncode  # type: ignore[return-value]


class ForkServer:
    """The pre-initialised parent (:mod:`.lambda_zygote`) and how to ask it for a child."""

    def __init__(self, runtime_dir: Path, workdir: Path) -> None:
        self.socket_path = str(workdir / "zygote.sock")
        self.status_dir = workdir / "exits"
        self.status_dir.mkdir()
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(runtime_dir / ZYGOTE.name), self.socket_path,
             str(runtime_dir), str(self.status_dir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "en_US.UTF-8"},
            start_new_session=True)
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline()
        if ready.strip() != b"ready":
            self.close()
            raise RuntimeError("the Lambda fork server did not start")

    def spawn(self, task_dir: Path, opt_dirs: list[str], env: dict[str, str]) -> ForkedProcess:
        child_in, to_child = os.pipe()
        from_child, child_out = os.pipe()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.connect(self.socket_path)
                request = json.dumps({"task_dir": str(task_dir), "opt_dirs": opt_dirs,
                                      "env": env}).encode() + b"\n"
                socket.send_fds(conn, [request], [child_in, child_out])
                answer = b""
                while not answer.endswith(b"\n"):
                    chunk = conn.recv(64)
                    if not chunk:
                        raise OSError("the Lambda fork server closed the connection")
                    answer += chunk
        except OSError:
            os.close(to_child)
            os.close(from_child)
            raise
        finally:
            os.close(child_in)
            os.close(child_out)
        return ForkedProcess(int(answer), os.fdopen(to_child, "wb", buffering=0),
                              os.fdopen(from_child, "rb", buffering=0), self.status_dir)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        kill_group(self.proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
