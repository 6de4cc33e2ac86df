"""aws/pacing.py on the local cloud's DynamoDB: the launch budget is one item
(``#limits``) updated by compare-and-set, so concurrent launchers share it; a spent
budget is refused (LaunchThrottled, which the state machine retries) instead of waited.
The clock and sleep are injected: no wall-clock time is measured."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from tests.functional.aws.dynamo_tables import new_table

from amiforge.aws.catalog import Catalog
from amiforge.aws.pacing import Pacer
from amiforge.errors import LaunchThrottled


@pytest.fixture()
def table(local_cloud: Any) -> tuple[Any, str]:
    db = boto3.client("dynamodb", region_name=local_cloud.region,
                      endpoint_url=local_cloud.endpoint)
    return db, new_table(db, "CatalogTable")


def test_two_launchers_share_one_budget(table: tuple[Any, str]) -> None:
    db, name = table
    now = [1000.0]
    slept: list[float] = []
    one = Pacer(db, name, burst=2, per_second=1.0, max_wait=1.5,
                clock=lambda: now[0], sleep=slept.append)
    two = Pacer(db, name, burst=2, per_second=1.0, max_wait=1.5,
                clock=lambda: now[0], sleep=slept.append)
    assert one.take() == 0 and two.take() == 0  # the burst
    assert one.take() == pytest.approx(1.0)  # then one per second, waited for
    with pytest.raises(LaunchThrottled, match="budget"):
        two.take()  # the next slot is 2 s away: more than max_wait
    assert slept == [pytest.approx(1.0)] and one.waited == pytest.approx(1.0)
    now[0] += 10
    assert two.take() == 0  # refilled
    assert list(Catalog(db, name).all_builds()) == []  # bookkeeping, not a build


def test_the_pacer_takes_a_slot_before_each_run_instances(table: tuple[Any, str],
                                                          local_cloud: Any) -> None:
    db, name = table
    ec2 = boto3.client("ec2", region_name=local_cloud.region,
                       endpoint_url=local_cloud.endpoint)
    pacer = Pacer(db, name, burst=1, per_second=0.01, max_wait=0)
    pacer.install(ec2)
    image = ec2.register_image(Name="pacing-base", RootDeviceName="/dev/xvda")["ImageId"]
    first = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
    with pytest.raises(LaunchThrottled):
        ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)
    ec2.describe_instances(InstanceIds=[first["InstanceId"]])  # other calls: not paced
    ec2.terminate_instances(InstanceIds=[first["InstanceId"]])
