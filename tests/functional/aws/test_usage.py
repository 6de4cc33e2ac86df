"""aws/usage.py on the local cloud: every kind of use the deletion gate must see, named
in the answer; and a region that cannot be read makes the gate keep its images."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from amiforge.aws.session import AwsContext
from amiforge.aws.usage import images_in_use, scan_uses, uses_by_image
from amiforge.steps.env import StepEnv
from amiforge.steps.gate import Gate

HOME = "us-east-1"


@pytest.fixture()
def aws(local_cloud: Any) -> AwsContext:
    return AwsContext(region=HOME, endpoint_url=local_cloud.endpoint)


def image(ec2: Any, name: str) -> str:
    return ec2.register_image(Name=f"{name}-{uuid.uuid4().hex[:8]}",
                              RootDeviceName="/dev/xvda")["ImageId"]


def test_every_kind_of_use_is_found_and_named(aws: AwsContext) -> None:
    ec2, ssm = aws.client("ec2"), aws.client("ssm")
    token = uuid.uuid4().hex[:8]
    other = image(ec2, "other")
    ids = {kind: image(ec2, kind) for kind in (
        "middle version", "text parameter", "spot fleet", "fleet template", "fleet override",
        "cancelled spot fleet", "unused")}
    name = f"lt-middle-{token}"
    lt = ec2.create_launch_template(LaunchTemplateName=name,
                                    LaunchTemplateData={"ImageId": other}
                                    )["LaunchTemplate"]["LaunchTemplateId"]
    for version in (ids["middle version"], other):
        ec2.create_launch_template_version(LaunchTemplateId=lt,
                                           LaunchTemplateData={"ImageId": version})
    ssm.put_parameter(Name=f"/team-{token}/ami", Type="String", Value=ids["text parameter"])
    fleet_lt = ec2.create_launch_template(
        LaunchTemplateName=f"lt-fleet-{token}",
        LaunchTemplateData={"ImageId": ids["fleet template"], "InstanceType": "t3.micro"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    fleet = ec2.create_fleet(
        Type="maintain",
        LaunchTemplateConfigs=[{
            "LaunchTemplateSpecification": {"LaunchTemplateId": fleet_lt, "Version": "1"},
            "Overrides": [{"InstanceType": "t3.small", "ImageId": ids["fleet override"]}]}],
        TargetCapacitySpecification={"TotalTargetCapacity": 0,
                                     "DefaultTargetCapacityType": "on-demand"})["FleetId"]

    def spot_fleet(image_id: str) -> str:
        return ec2.request_spot_fleet(SpotFleetRequestConfig={
            "IamFleetRole": "arn:aws:iam::123456789012:role/fleet", "TargetCapacity": 0,
            "AllocationStrategy": "lowestPrice", "SpotPrice": "0.1",
            "LaunchSpecifications": [{"ImageId": image_id, "InstanceType": "t3.micro"}],
        })["SpotFleetRequestId"]

    spot = spot_fleet(ids["spot fleet"])
    cancelled = spot_fleet(ids["cancelled spot fleet"])
    ec2.cancel_spot_fleet_requests(SpotFleetRequestIds=[cancelled], TerminateInstances=False)

    uses = images_in_use(lambda service: aws.client(service), ids.values())

    assert f"launch template {lt} ({name}) version 2" in uses[ids["middle version"]]
    assert f"SSM parameter /team-{token}/ami" in uses[ids["text parameter"]]
    assert f"Spot fleet request {spot} (launch specification)" in uses[ids["spot fleet"]]
    assert f"EC2 Fleet {fleet} (launch template {fleet_lt} 1)" in uses[ids["fleet template"]]
    assert f"EC2 Fleet {fleet} (launch template override)" in uses[ids["fleet override"]]
    assert not any(f"Spot fleet request {cancelled}" in where
                   for where in uses.get(ids["cancelled spot fleet"], []))
    assert ids["unused"] not in uses


@pytest.mark.usefixtures("short_client_backoff")
def test_a_region_that_cannot_be_read_keeps_its_images(aws: AwsContext) -> None:
    gate = Gate(StepEnv(catalog_table="", recipes_table="", aws=aws))
    usage = gate.usage("zz-fake-9", ["ami-0123456789abcdef0"])
    assert usage.uses == {}
    assert usage.unknown is not None
    assert usage.unknown.startswith("could not read uses in zz-fake-9: ")


def test_the_scan_names_each_use_by_kind_id_and_region(aws: AwsContext) -> None:
    """What ``amiforge fleet`` lists comes from the same scan, one ImageUse per use."""
    ec2, ssm, autoscaling = aws.client("ec2"), aws.client("ssm"), aws.client("autoscaling")
    token = uuid.uuid4().hex[:8]
    ami = image(ec2, "structured")
    instance = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1,
                                 InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    lt = ec2.create_launch_template(LaunchTemplateName=f"lt-s-{token}",
                                    LaunchTemplateData={"ImageId": ami}
                                    )["LaunchTemplate"]["LaunchTemplateId"]
    config = f"lc-s-{token}"
    autoscaling.create_launch_configuration(LaunchConfigurationName=config, ImageId=ami,
                                            InstanceType="t3.micro")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = f"asg-s-{token}"
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=group, MinSize=0, MaxSize=0, VPCZoneIdentifier=subnet,
        LaunchTemplate={"LaunchTemplateId": lt, "Version": "$Default"})
    parameter = f"/team-{token}/ami"
    ssm.put_parameter(Name=parameter, Type="String", Value=ami)

    uses = scan_uses(lambda service: aws.client(service), [ami], region=HOME)

    assert {(u.kind, u.id) for u in uses} == {
        ("instance", instance), ("launch_template_version", f"{lt}:1"),
        ("launch_configuration", config), ("auto_scaling_group", group),
        ("ssm_parameter", parameter)}
    assert {(u.image_id, u.region) for u in uses} == {(ami, HOME)}
    assert uses_by_image(uses) == images_in_use(lambda service: aws.client(service), [ami])


def test_a_version_neither_default_nor_latest_is_a_standby_use(aws: AwsContext) -> None:
    """Retention sees every version; the standby flag is what ``fleet`` leaves out."""
    ec2 = aws.client("ec2")
    old, new, newest = (image(ec2, n) for n in ("old", "new", "newest"))
    lt = ec2.create_launch_template(LaunchTemplateName=f"lt-sb-{uuid.uuid4().hex[:8]}",
                                    LaunchTemplateData={"ImageId": old}
                                    )["LaunchTemplate"]["LaunchTemplateId"]
    for version in (new, newest):
        ec2.create_launch_template_version(LaunchTemplateId=lt,
                                           LaunchTemplateData={"ImageId": version})
    ec2.modify_launch_template(LaunchTemplateId=lt, DefaultVersion="2")

    uses = scan_uses(lambda service: aws.client(service), [old, new, newest], region=HOME)

    assert {(u.id, u.image_id, u.standby) for u in uses} == {
        (f"{lt}:1", old, True), (f"{lt}:2", new, False), (f"{lt}:3", newest, False)}
    assert old in images_in_use(lambda service: aws.client(service), [old])


def test_a_template_past_the_first_page_is_still_a_use(aws: AwsContext) -> None:
    """The gate reads every page of templates: the one made last, past the first 15, counts."""
    ec2 = aws.client("ec2")
    filler = image(ec2, "filler")
    for _ in range(16):
        ec2.create_launch_template(LaunchTemplateName=f"lt-fill-{uuid.uuid4().hex[:8]}",
                                   LaunchTemplateData={"ImageId": filler})
    last = image(ec2, "last")
    ec2.create_launch_template(LaunchTemplateName=f"lt-last-{uuid.uuid4().hex[:8]}",
                               LaunchTemplateData={"ImageId": last})

    assert last in images_in_use(lambda service: aws.client(service), [last])
