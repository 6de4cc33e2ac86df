"""RunInstances tags the network interfaces it creates, as AWS does
(localcloud/fills/ec2.py)."""

from __future__ import annotations

from typing import Any

import boto3

BASE = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"


def test_network_interfaces_get_their_tag_specification(local_cloud: Any) -> None:
    ec2 = boto3.client("ec2")
    image = boto3.client("ssm").get_parameter(Name=BASE)["Parameter"]["Value"]
    tags = [{"Key": "team", "Value": "net"}]
    (instance,) = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "kind", "Value": "box"}]},
            {"ResourceType": "network-interface", "Tags": tags}])["Instances"]
    (interface,) = instance["NetworkInterfaces"]
    described = ec2.describe_network_interfaces(
        NetworkInterfaceIds=[interface["NetworkInterfaceId"]])["NetworkInterfaces"][0]
    assert described["TagSet"] == tags
    plain = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
    untagged = ec2.describe_network_interfaces(NetworkInterfaceIds=[
        plain["NetworkInterfaces"][0]["NetworkInterfaceId"]])["NetworkInterfaces"][0]
    assert untagged.get("TagSet", []) == []
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"], plain["InstanceId"]])
