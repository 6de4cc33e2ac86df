"""Expected errors through the installed console script: one line, the right exit code,
never a traceback (issue: the command line as AWS users expect it)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
AMIFORGE = str(Path(sys.executable).with_name("amiforge"))


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **env}
    return subprocess.run([AMIFORGE, *args], env=environ, capture_output=True, text=True,
                          timeout=120)


class _NotAws(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = b"<!DOCTYPE HTML><html><body><h1>Error</h1><p>nope</body></html>"
        self.send_response(501)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def plain_web_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _NotAws)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def assert_one_line(proc: subprocess.CompletedProcess[str], code: int, says: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert says in proc.stderr


@pytest.mark.parametrize(("endpoint", "says"), [
    ("127.0.0.1:4566", "not an http(s) URL"),
    ("htp://x", "not an http(s) URL"),
])
def test_malformed_endpoint(endpoint: str, says: str) -> None:
    assert_one_line(run("--endpoint-url", endpoint, "status"), 2, says)


def test_an_endpoint_that_is_not_aws(plain_web_server: str) -> None:
    proc = run("status", "--endpoint-url", plain_web_server)
    assert_one_line(proc, 2, "did not answer as an AWS API would")


def test_a_region_that_is_not_a_region(plain_web_server: str) -> None:
    assert_one_line(run("--endpoint-url", plain_web_server, "--region", "mars-1", "status"),
                    2, "'mars-1' is not an AWS region name")


def test_local_up_on_a_port_in_use() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = run("local", "up", "--port", str(port))
    assert_one_line(proc, 2, f"cannot listen on 127.0.0.1:{port}")


def test_errors_are_json_under_output_json(plain_web_server: str) -> None:
    proc = run("status", "--output", "json", "--endpoint-url", plain_web_server)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert json.loads(proc.stderr)["exit_code"] == 2


def test_tables_into_a_pipe_keep_whole_ids(amiforge: Any, recipe_dir: Any,
                                          local_cloud: Any) -> None:
    name = "pipe-" + "x" * 30  # a long name: ids wider than 80 columns in all
    assert amiforge("publish", str(recipe_dir(name))).exit_code == 0
    built = amiforge("build", "--wait", name, output="json")
    assert built.exit_code == 0, built.output
    (build,) = json.loads(built.stdout)["builds"]
    proc = run("history", name, "--stack", "amiforge-e2e",
               AWS_ENDPOINT_URL=local_cloud.endpoint, AWS_REGION=local_cloud.region)
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if build["build_id"] in line)
    assert build["image_id"] in line  # one row, one line: nothing folded or cut


def test_recipe_names_complete_from_the_stack(amiforge: Any, recipe_dir: Any,
                                              local_cloud: Any, tmp_path: Path) -> None:
    assert amiforge("publish", str(recipe_dir("completes-from-stack"))).exit_code == 0
    words = "amiforge --stack amiforge-e2e history completes-"
    proc = subprocess.run([AMIFORGE], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "_AMIFORGE_COMPLETE": "bash_complete",
                               "COMP_WORDS": words, "COMP_CWORD": "4",
                               "AWS_ENDPOINT_URL": local_cloud.endpoint,
                               "AWS_REGION": local_cloud.region})
    assert proc.stdout.splitlines() == ["plain,completes-from-stack"]
