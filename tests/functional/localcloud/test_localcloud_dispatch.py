"""moto's request dispatch as the local cloud runs it (localcloud/fills/dispatch.py): what
moto lists on every request is listed once per install (a response class's action names,
moto's service packages), the same as moto lists, requests still reach their actions, and
URL rules are compiled one thread at a time."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import boto3
import moto.backends as moto_backends
import moto.core.responses as moto_responses
import moto.core.routing as moto_routing
from moto.core.utils import method_names_from_class as listed_by_moto
from moto.ec2.responses import EC2Response

from amiforge.localcloud.fills import dispatch


def test_action_names_are_moto_s_and_listed_once(local_cloud: Any) -> None:
    names = moto_responses.method_names_from_class(EC2Response)
    assert set(names) == set(listed_by_moto(EC2Response))
    assert "describe_images" in names and "run_instances" in names
    assert moto_responses.method_names_from_class(EC2Response) is names
    # requests still find their actions
    assert boto3.client("ec2").describe_regions()["Regions"]
    assert boto3.client("sts").get_caller_identity()["Account"]


def test_service_packages_are_moto_s_and_listed_once(local_cloud: Any,
                                                     monkeypatch: Any) -> None:
    root = Path(moto_backends.__file__).parent
    packages = moto_backends.list_of_moto_modules()
    assert set(packages) == {p.name for p in root.iterdir()
                             if p.is_dir() and not p.name.startswith("__")}
    assert {"ec2", "s3", "stepfunctions"} <= set(packages)
    ssm, s3 = boto3.client("ssm"), boto3.client("s3")
    # later requests do not list moto's directory again, and still reach their service
    listed: list[str] = []

    class SpyOs:  # what moto.backends sees as ``os``: its listing is watched
        path = os.path

        @staticmethod
        def listdir(path: str) -> list[str]:
            listed.append(path)
            return os.listdir(path)

    monkeypatch.setattr(moto_backends, "os", SpyOs)
    assert ssm.describe_parameters()["Parameters"] is not None
    assert s3.list_buckets()["Buckets"] is not None
    assert moto_backends.list_of_moto_modules() is packages
    assert listed == []


def test_routers_and_apps_compile_their_rules_under_one_lock(local_cloud: Any,
                                                             monkeypatch: Any) -> None:
    # Rule compilation calls ast.parse, which CPython 3.11 cannot run in two threads at
    # once (a SystemError, answered with a 500): each router is built holding the lock.
    held: list[bool] = []
    real_create_map = moto_routing._create_map

    def create_map(rules: Any) -> Any:
        held.append(dispatch.COMPILE_LOCK.locked())
        return real_create_map(rules)

    monkeypatch.setattr(moto_routing, "_create_map", create_map)
    moto_routing.get_service_router.cache_clear()  # the next REST call builds a router
    lam = boto3.client("lambda")
    assert lam.list_functions()["Functions"] is not None
    assert lam.list_functions()["Functions"] is not None  # built once, then reused
    assert held == [True]

    def create_app(service: str) -> str:
        held.append(dispatch.COMPILE_LOCK.locked())
        return f"app for {service}"

    assert dispatch.serialised(create_app)("ec2") == "app for ec2"
    assert held == [True, True] and not dispatch.COMPILE_LOCK.locked()
