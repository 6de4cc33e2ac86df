"""A response class's action names are listed once per install, not per request
(localcloud/fills/dispatch.py): the same names as moto lists, and requests still reach
their actions."""

from __future__ import annotations

from typing import Any

import boto3
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
