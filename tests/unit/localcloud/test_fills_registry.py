"""The registry of moto fills: refuses a moto it was not written for, installs once,
and puts back exactly what it replaced. Each test uses a registry of its own on a moto
attribute the local cloud does not fill, so it holds while a local cloud runs."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from moto.sqs.models import SQSBackend

from amiforge.cli.main import cli
from amiforge.localcloud import fills
from amiforge.localcloud.fills import (
    MOTO_VERSION,
    Fill,
    FillRegistry,
    FillsAlreadyInstalled,
    MotoMismatch,
    fingerprint,
)
from amiforge.localcloud.fills.services import REGISTRY

OWNER = "moto.sqs.models:SQSBackend"
ORIGINAL = SQSBackend.__dict__["list_queues"]


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    def list_queues(self: Any, *args: Any, **kwargs: Any) -> Any:
        return original(self, *args, **kwargs)

    return list_queues


def fill(name: str = "sqs.list-queues", attribute: str = "list_queues",
         print_: str | None = "", build: Callable[[Any], Any] = _wrap) -> Fill:
    recorded = fingerprint(ORIGINAL) if print_ == "" else print_
    return Fill(name, OWNER, attribute, build, recorded)


@pytest.fixture(autouse=True)
def moto_untouched() -> Iterator[None]:
    yield
    assert SQSBackend.__dict__["list_queues"] is ORIGINAL
    assert "amiforge_added" not in SQSBackend.__dict__


def test_install_replaces_and_uninstall_puts_back_the_same_object() -> None:
    registry = FillRegistry([fill()])
    registry.install()
    try:
        assert SQSBackend.__dict__["list_queues"] is not ORIGINAL
        assert SQSBackend.list_queues.__module__ == __name__
    finally:
        registry.uninstall()
    assert SQSBackend.__dict__["list_queues"] is ORIGINAL
    assert not registry.installed


def test_installing_twice_is_refused_and_leaves_the_first_install() -> None:
    registry = FillRegistry([fill()])
    registry.install()
    try:
        installed = SQSBackend.__dict__["list_queues"]
        with pytest.raises(FillsAlreadyInstalled, match="installed already"):
            registry.install()
        assert SQSBackend.__dict__["list_queues"] is installed  # not wrapped in itself
    finally:
        registry.uninstall()


def test_a_changed_moto_function_is_refused_with_one_line_naming_the_fill() -> None:
    registry = FillRegistry([fill(print_="0123456789ab")])
    with pytest.raises(MotoMismatch) as caught:
        registry.install()
    message = str(caught.value)
    assert "'sqs.list-queues'" in message
    assert "moto.sqs.models:SQSBackend.list_queues" in message
    assert "recorded 0123456789ab" in message and fingerprint(ORIGINAL) in message
    assert "\n" not in message
    assert not registry.installed
    assert registry.mismatches() == {"sqs.list-queues": ("0123456789ab",
                                                         fingerprint(ORIGINAL))}


def test_nothing_is_replaced_when_a_later_fill_does_not_fit() -> None:
    registry = FillRegistry([fill(), fill("sqs.gone", "no_such_method", print_="abc")])
    with pytest.raises(MotoMismatch, match="'sqs.gone'.*no longer has this attribute"):
        registry.install()
    # the autouse fixture checks list_queues was never replaced


def test_a_fill_adding_what_moto_now_has_is_refused() -> None:
    registry = FillRegistry([fill("sqs.added", print_=None)])
    with pytest.raises(MotoMismatch, match="moto now has this attribute itself"):
        registry.install()


def test_an_added_attribute_is_removed_again() -> None:
    registry = FillRegistry([fill("sqs.added", "amiforge_added", print_=None,
                                  build=lambda original: original is None)])
    registry.install()
    assert SQSBackend.__dict__["amiforge_added"] is True  # the build saw no original
    registry.uninstall()


def test_a_failing_build_undoes_the_fills_installed_before_it() -> None:
    def broken(_original: Any) -> Any:
        raise RuntimeError("cannot build")

    registry = FillRegistry([fill(), fill("sqs.broken", "amiforge_added", print_=None,
                                          build=broken)])
    with pytest.raises(RuntimeError, match="cannot build"):
        registry.install()
    assert not registry.installed


def test_two_fills_of_one_target_are_refused() -> None:
    with pytest.raises(ValueError, match="'a' and 'b' both replace "
                                         "moto.sqs.models:SQSBackend.list_queues"):
        FillRegistry([fill("a"), fill("b")])


def test_the_local_clouds_fills_replace_each_target_once() -> None:
    targets = [f.target for f in REGISTRY.fills]
    assert len(targets) == len(set(targets))
    starts = [t for t in targets if t.endswith("StepFunctionsParserBackend.start_execution")]
    assert len(starts) == 1


def test_fingerprint_reads_the_function_behind_a_property_or_classmethod() -> None:
    from moto.cloudformation.custom_model import CustomModel
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface

    association = inspect.getattr_static(NetworkInterface, "association")
    assert fingerprint(association) == fingerprint(association.fget)
    create = inspect.getattr_static(CustomModel, "create_from_cloudformation_json")
    assert fingerprint(create) == fingerprint(create.__func__)


# -- the moto version --------------------------------------------------------------------

@pytest.fixture
def other_moto(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(fills, "installed_moto_version", lambda: "5.2.4")
    return "5.2.4"


def test_the_pinned_version_is_what_is_installed() -> None:
    assert fills.installed_moto_version() == MOTO_VERSION
    fills.check_moto_version()


def test_a_wrong_moto_version_is_refused_at_start(other_moto: str) -> None:
    from amiforge.localcloud.server import LocalCloud

    cloud = LocalCloud(port=0)
    with pytest.raises(MotoMismatch) as caught:
        cloud.start()
    assert str(caught.value) == (
        f"the local cloud needs moto {MOTO_VERSION} (it extends moto's internals), but "
        f"moto 5.2.4 is installed (pip install 'moto[server]=={MOTO_VERSION}')")
    assert cloud.port == 0


def test_local_up_with_a_wrong_moto_version_prints_one_line(other_moto: str) -> None:
    result = CliRunner().invoke(cli, ["local", "up", "--port", "0"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"amiforge: error: the local cloud needs moto {MOTO_VERSION} (it extends moto's "
        f"internals), but moto 5.2.4 is installed (pip install "
        f"'moto[server]=={MOTO_VERSION}')"]
