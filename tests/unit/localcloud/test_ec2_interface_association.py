"""Regression: DescribeInstances answered 500 when a builder stopped mid-serialisation.

moto's ``NetworkInterface.association`` checked ``public_ip`` and then read it again; the
simulator stopping the instance in another thread cleared it in between, and
``generate_dns_from_ip(None)`` raised (seen in CI as a failed build whose reason was
"ResponseParserError ... 500 Internal Server Error").
"""

from __future__ import annotations

from typing import Any

from amiforge.localcloud.fills.ec2 import association


class Backend:
    account_id = "123456789012"

    def address_by_ip(self, ips: list[str], fail_if_not_found: bool = True) -> list[Any]:
        return []


class StoppingInterface:
    """Its public IP is there at the first read and gone at the second."""

    ec2_backend = Backend()

    def __init__(self) -> None:
        self.reads = 0

    @property
    def public_ip(self) -> str | None:
        self.reads += 1
        return "54.1.2.3" if self.reads == 1 else None


def test_association_reads_the_public_ip_once() -> None:
    found = association(StoppingInterface())
    assert found["publicIp"] == "54.1.2.3"
    assert found["publicDnsName"].startswith("ip-54-1-2-3")


def test_no_public_ip_no_association() -> None:

    class Stopped(StoppingInterface):
        reads = 1

        def __init__(self) -> None:
            self.reads = 1

    assert association(Stopped()) == {}
