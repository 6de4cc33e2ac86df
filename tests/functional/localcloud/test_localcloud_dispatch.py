"""What moto lists on every request is listed once per install (localcloud/fills/dispatch.py):
a response class's action names and moto's service packages, the same as moto lists,
and requests still reach their actions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import boto3
import moto.backends as moto_backends
import moto.core.responses as moto_responses
from moto.core.utils import method_names_from_class as listed_by_moto
from moto.ec2.responses import EC2Response


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
