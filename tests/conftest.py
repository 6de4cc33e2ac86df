"""Root conftest: owns the local cloud and the fake credentials.

Before any test module is imported, the environment is made safe: dummy credentials, a
region, no profile or credentials file, no instance-metadata lookups, and
``AWS_ENDPOINT_URL`` pointing at a dead loopback port, so a test that forgets the local
cloud fails fast instead of reaching AWS. A socket guard refuses, for the whole run,
any connection or name lookup that is not loopback.

``local_cloud`` (session scope; one per pytest-xdist worker, since each worker is its own
process) starts a :class:`~amiforge.localcloud.LocalCloud` and points
``AWS_ENDPOINT_URL`` at it. The cloud is shared by every test of the worker: use unique
names, or call ``local_cloud.reset()``. Settings a test changes (``builder_seconds``,
``time_scale``) must be restored by that test.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

DEAD_ENDPOINT = "http://127.0.0.1:9"
TEST_BUILDER_SECONDS = 0.5

_SAFE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": DEAD_ENDPOINT,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN",
              "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
              "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN"):
    os.environ.pop(_name, None)
os.environ.update(_SAFE_ENV)


# -- loopback only ---------------------------------------------------------------------

def _is_local(host: Any) -> bool:
    if host in (None, "", "localhost") or str(host).endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _checked(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        raise ConnectionRefusedError(
            f"tests may only connect to loopback, not {address[0]!r} (is the local cloud's "
            "endpoint set? use the local_cloud fixture)")


def _connect(self: socket.socket, address: Any) -> None:
    _checked(self, address)
    return _real_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    _checked(self, address)
    return _real_connect_ex(self, address)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_local(host.decode() if isinstance(host, bytes) else host):
        raise socket.gaierror(socket.EAI_NONAME,
                              f"tests may not resolve {host!r}: only loopback is allowed")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _connect  # type: ignore[method-assign]
socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _getaddrinfo


# -- property tests ------------------------------------------------------------------------
# No per-example deadline: on two cores shared by three workers (and whatever else runs),
# an example's wall time measures the machine's load, not the code (a 0.05 ms example was
# once timed at 414 ms). Every property is still checked on every example.
from hypothesis import settings  # noqa: E402

settings.register_profile("amiforge", deadline=None)
settings.load_profile("amiforge")


# -- the local cloud ---------------------------------------------------------------------

@pytest.fixture(scope="session")
def local_cloud() -> Iterator[Any]:
    """A started LocalCloud for this worker; ``AWS_ENDPOINT_URL`` points at it."""
    from amiforge.localcloud.server import LocalCloud

    cloud = LocalCloud(port=0, region="us-east-1", builder_seconds=TEST_BUILDER_SECONDS)
    cloud.start()
    os.environ["AWS_ENDPOINT_URL"] = cloud.endpoint
    try:
        yield cloud
    finally:
        os.environ["AWS_ENDPOINT_URL"] = DEAD_ENDPOINT
        cloud.stop()


@pytest.fixture()
def short_client_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's standard-mode backoff between attempts at a hundredth, in this process.

    For tests of what a step does once a region's calls have failed every attempt (the
    local cloud answers a region it does not know with a 500, retried as AWS's errors
    are): every attempt of ``RETRY_CONFIG`` is still made, with the same errors; only the
    sleeps between them shrink, as ``LocalCloud.retry_scale`` does for Step Functions.
    A Lambda's own clients (other processes) keep their real backoff."""
    from botocore.retries import standard

    real = standard.ExponentialBackoff.delay_amount

    def shorter(self: Any, context: Any) -> float:
        return float(real(self, context)) / 100

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", shorter)
