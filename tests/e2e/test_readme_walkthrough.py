"""README's "Trying it by hand" walkthrough, pasted as a user pastes it: the first block in
one shell (the local cloud, in the background), the second in a fresh shell, line by line
(``bash -e``). Only the port is changed, to one that is free."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers import with_ctrl_c

from amiforge.localcloud.testing import wait_for

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def walkthrough_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Trying it by hand on the local cloud", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fresh_env() -> dict[str, str]:
    """A new shell's environment: no AWS settings from the test run."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def test_the_readme_walkthrough_works_pasted_line_by_line() -> None:
    terminal_one, terminal_two = walkthrough_blocks()[:2]
    port = str(free_port())
    terminal_one, terminal_two = (b.replace("4566", port) for b in (terminal_one, terminal_two))
    cloud = subprocess.Popen(with_ctrl_c(["bash", "-e", "-c", terminal_one]), cwd=ROOT,
                             env=fresh_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             start_new_session=True)
    try:
        printed = []
        for line in cloud.stdout:  # type: ignore[union-attr]
            printed.append(line)
            if "AWS_DEFAULT_REGION" in line:  # the last line local up prints
                break
        # What `local up` prints is what the README exports.
        exports = {m.group(1): m.group(2) for m in
                   re.finditer(r"export (\w+)=(\S+)", "".join(printed))}
        assert set(exports) == {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                                "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}
        for name, value in exports.items():
            assert f"{name}={value}" in terminal_two, (name, value)
        shell = subprocess.run(["bash", "-e", "-c", terminal_two], cwd=ROOT, env=fresh_env(),
                               capture_output=True, text=True, timeout=600)
        assert shell.returncode == 0, shell.stderr[-3000:]
        assert "Traceback" not in shell.stderr
        env = {**fresh_env(), **exports}
        amiforge = str(Path(sys.executable).with_name("amiforge"))

        def every_example_built() -> bool:
            status = subprocess.run([amiforge, "status", "--output", "json"], env=env,
                                    capture_output=True, text=True, timeout=120)
            assert status.returncode == 0, status.stderr
            rows = json.loads(status.stdout)["recipes"]
            return len(rows) == 4 and all(r["latest_image"] for r in rows)

        wait_for(every_example_built, timeout=300, interval=1.0, what="4 examples built")
    finally:
        os.killpg(cloud.pid, signal.SIGINT)
        try:
            cloud.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(cloud.pid, signal.SIGKILL)
