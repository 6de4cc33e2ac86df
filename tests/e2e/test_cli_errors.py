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


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "recipes"


def test_global_options_after_the_command_and_aws_region_alone(tmp_path: Path) -> None:
    proc = run("validate", str(EXAMPLES), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["version"] == 1
    # AWS_REGION alone (no AWS_DEFAULT_REGION) is a region; --profile that does not exist
    # is one line, exit 2.
    env = {k: v for k, v in os.environ.items() if k != "AWS_DEFAULT_REGION"}
    proc = subprocess.run([AMIFORGE, "status", "--profile", "no-such-profile"],
                          env={**env, "AWS_REGION": "eu-west-3"}, capture_output=True,
                          text=True, timeout=60)
    assert_one_line(proc, 2, "profile 'no-such-profile' is not configured")


def test_validate_refuses_a_script_that_powers_off_and_warns_of_imdsv1(tmp_path: Path) -> None:
    base = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"
    (tmp_path / "s.sh").write_text("#!/bin/bash\ncurl http://169.254.169.254/latest/\n")
    (tmp_path / "r.yaml").write_text(
        f"name: r\nbase:\n  ssm_parameter: {base}\nbuild:\n  user_data: s.sh\n")
    warned = run("validate", str(tmp_path))
    assert warned.returncode == 0 and "IMDSv1" in warned.stderr
    assert run("validate", str(tmp_path), "--strict").returncode == 2
    (tmp_path / "s.sh").write_text("#!/bin/bash\nyum -y update\nshutdown -h now\n")
    assert_one_line(run("validate", str(tmp_path)), 2, "powers off or restarts the machine")


def test_destroy_without_a_terminal_or_yes_says_how_to_go_on() -> None:
    proc = subprocess.run([AMIFORGE, "destroy", "--endpoint-url", "http://127.0.0.1:9"],
                          env=os.environ, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "Aborted!" not in proc.stderr
    assert "pass --yes" in proc.stderr


def test_publish_says_why_a_build_did_not_start(amiforge: Any, tmp_path: Path) -> None:
    (tmp_path / "s.sh").write_text("#!/bin/bash\necho hi\n")
    (tmp_path / "nobase.yaml").write_text(
        "name: nobase\nbase:\n  ssm_parameter: /aws/service/ami-amazon-linux-latest/"
        "no-such-image-x86_64\nbuild:\n  user_data: s.sh\n")
    shown = amiforge("publish", str(tmp_path))
    assert shown.exit_code == 0, shown.output
    row = next(line for line in shown.stdout.splitlines() if "nobase" in line)
    assert "- (base not found" in row
