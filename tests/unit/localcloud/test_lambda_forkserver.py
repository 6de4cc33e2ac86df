"""An environment that has ended is never killed by number: its pid may be another
process's by then (pids wrap at 32,768 here), and such a kill once ended another test's
Lambda environment mid-invocation ("Runtime exited with error: exit status -9")."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from amiforge.localcloud import lambda_forkserver
from amiforge.localcloud.lambda_forkserver import ForkedProcess, kill_group


@pytest.fixture()
def killpg_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr(lambda_forkserver.os, "killpg", lambda pid, sig: calls.append(pid))
    return calls


def ended_child() -> subprocess.Popen[bytes]:
    child = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    child.wait()
    return child


def test_an_ended_process_is_not_killed_by_number(killpg_calls: list[int]) -> None:
    kill_group(ended_child())
    assert killpg_calls == []


def test_a_running_process_is_killed_with_its_group(killpg_calls: list[int]) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                             start_new_session=True)
    try:
        kill_group(child)
        assert killpg_calls == [child.pid]
    finally:
        child.kill()
        child.wait()


def test_a_forked_environment_that_ended_is_known_by_its_pidfd_not_its_pid(
        tmp_path: Path, killpg_calls: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Its pid taken by another process (``/proc/<pid>`` exists again) changes nothing."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE, start_new_session=True)
    forked = ForkedProcess(child.pid, None, None, tmp_path)
    assert forked.poll() is None
    assert child.stdin is not None
    child.stdin.close()
    child.wait()  # reaped: the pid is free for the next process
    (tmp_path / str(child.pid)).write_text("0")
    real_exists = Path.exists
    monkeypatch.setattr(Path, "exists", lambda self: str(self) == f"/proc/{child.pid}"
                        or real_exists(self))

    kill_group(forked)

    assert killpg_calls == []
    assert forked.poll() == 0


def test_a_forked_environment_gone_without_a_status_reads_as_killed(
        tmp_path: Path, killpg_calls: list[int]) -> None:
    forked = ForkedProcess(ended_child().pid, None, None, tmp_path)
    assert forked.poll() == -9
    kill_group(forked)
    assert killpg_calls == []


def test_no_pidfd_is_left_open_once_the_end_is_read(tmp_path: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                                 stdin=subprocess.PIPE, start_new_session=True)
        forked = ForkedProcess(child.pid, None, None, tmp_path)
        assert child.stdin is not None
        child.stdin.close()
        child.wait()
        (tmp_path / str(child.pid)).write_text("0")
        assert forked.poll() == 0
    assert len(os.listdir("/proc/self/fd")) <= before


def live_child() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE, start_new_session=True)


def end(child: subprocess.Popen[bytes]) -> None:
    assert child.stdin is not None
    child.stdin.close()
    child.wait()


def test_an_earlier_process_status_under_the_same_pid_is_not_this_ones(
        tmp_path: Path) -> None:
    child = live_child()
    (tmp_path / str(child.pid)).write_text("0")  # left by a process that had this pid
    try:
        assert ForkedProcess(child.pid, None, None, tmp_path).poll() is None
    finally:
        end(child)


def test_a_process_past_descriptor_1023_is_still_watched(tmp_path: Path) -> None:
    """select() refuses descriptors past 1,023; a busy local cloud holds more."""
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    child = live_child()
    try:
        forked = ForkedProcess(child.pid, None, None, tmp_path)
        assert forked.poll() is None
        end(child)
        (tmp_path / str(child.pid)).write_text("3")
        assert forked.poll() == 3
    finally:
        for fd in held:
            os.close(fd)
        if child.poll() is None:
            end(child)


# A local cloud that starts a fork server, prints the server's pid, and waits to be killed.
CLOUD = """
import sys, time
from pathlib import Path
from amiforge.localcloud.lambda_code import build_runtime_dir
from amiforge.localcloud.lambda_forkserver import ForkServer
work = Path(sys.argv[1])
build_runtime_dir(work / "runtime")
server = ForkServer(work / "runtime", work)
print(server.proc.pid, flush=True)
time.sleep(600)
"""


def test_the_fork_server_ends_when_the_local_cloud_that_started_it_is_killed(
        tmp_path: Path) -> None:
    # `kill -9` of `amiforge local up` (or a test run's timeout) cannot stop the fork
    # server, which is in a session of its own: it must notice and exit by itself.
    cloud = subprocess.Popen([sys.executable, "-c", CLOUD, str(tmp_path)],
                             stdout=subprocess.PIPE, text=True)
    assert cloud.stdout is not None
    server = int(cloud.stdout.readline())
    watch = os.pidfd_open(server)  # by pidfd: the pid may be another's once it is reaped
    poller = select.poll()
    poller.register(watch, select.POLLIN)
    try:
        assert poller.poll(0) == []  # serving
        cloud.kill()
        cloud.wait(timeout=10)
        assert poller.poll(15_000) != [], "the fork server outlived its local cloud"
    finally:
        if poller.poll(0) == []:
            signal.pidfd_send_signal(watch, signal.SIGKILL)
        os.close(watch)
