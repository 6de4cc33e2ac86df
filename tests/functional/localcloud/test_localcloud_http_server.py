"""The local cloud's HTTP server (localcloud/http_server.py): connections stay open, the
thread pool grows when every thread is held, and headers reach moto as its own server
hands them over."""

from __future__ import annotations

import http.client
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from amiforge.localcloud.http_server import THREADS, Server


@pytest.fixture()
def serve() -> Iterator[Callable[[Any], int]]:
    """``serve(app)``: the port of a started Server for the WSGI ``app``."""
    servers: list[Server] = []

    def start(app: Any) -> int:
        server = Server(0, app)
        server.prepare()
        threading.Thread(target=server.serve, daemon=True).start()
        servers.append(server)
        return server.port

    yield start
    for server in servers:
        server.stop()


def _ok(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = b"ok"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def test_a_client_s_requests_share_one_connection(local_cloud: Any) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", local_cloud.port, timeout=10)
    ports = set()
    for _ in range(3):
        connection.request("GET", "/_amiforge/health")
        response = connection.getresponse()
        assert response.status == 200 and b'"ok": true' in response.read()
        assert response.getheader("Connection") != "close"
        ports.add(connection.sock.getsockname()[1])  # a new connection has a new port
    connection.close()
    assert len(ports) == 1


def test_requests_that_hold_every_thread_do_not_starve_the_rest(
        serve: Callable[[Any], int]) -> None:
    # Each request waits until all have arrived, as an Invoke waits on its function's
    # own calls: a fixed pool of THREADS would never let the last ones in.
    count = THREADS * 2 + 3
    everyone = threading.Barrier(count, timeout=20)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        everyone.wait()
        return _ok(environ, start_response)

    port = serve(app)

    def get(_: int) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/")
        status = connection.getresponse().status
        connection.close()
        return status

    with ThreadPoolExecutor(count) as pool:
        assert list(pool.map(get, range(count))) == [200] * count


def test_headers_reach_the_app_as_moto_s_server_passes_them(
        serve: Callable[[Any], int]) -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        return _ok(environ, start_response)

    connection = http.client.HTTPConnection("127.0.0.1", serve(app), timeout=10)
    connection.putrequest("GET", "/")
    connection.putheader("X-Amz-Meta-My_Key", "kept")  # S3 metadata: kept, and its name
    connection.putheader("X_Custom", "dropped")        # any other underscored name: dropped
    connection.putheader("X_Foo", "underscored")       # never stands in for X-Foo
    connection.putheader("X-Foo", "dashed")
    connection.endheaders()
    assert connection.getresponse().status == 200
    connection.close()
    assert seen["HTTP_X_AMZ_META_MY_KEY"] == "kept"
    assert seen["moto.preserved_header_names"] == {"HTTP_X_AMZ_META_MY_KEY":
                                                   "x-amz-meta-my_key"}
    assert "HTTP_X_CUSTOM" not in seen
    assert seen["HTTP_X_FOO"] == "dashed"


def test_s3_metadata_keys_keep_their_underscores(local_cloud: Any) -> None:
    s3 = boto3.client("s3")
    bucket = f"meta-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x",
                  Metadata={"my_key": "a", "other-key": "b"})
    assert s3.head_object(Bucket=bucket, Key="k")["Metadata"] == {"my_key": "a",
                                                                  "other-key": "b"}
