"""aws/launch_templates.py on the local cloud: a template's default version read by name or
id, a new version copied from it with only the image changed, made the default."""

from __future__ import annotations

import uuid
from typing import Any

from amiforge.aws import launch_templates as lt_api
from amiforge.aws.session import AwsContext


def image(ec2: Any) -> str:
    return ec2.register_image(Name=f"lt-{uuid.uuid4().hex[:8]}",
                              RootDeviceName="/dev/xvda")["ImageId"]


def test_a_new_version_copies_the_default_and_becomes_it(aws: AwsContext) -> None:
    ec2 = aws.client("ec2")
    old, new = image(ec2), image(ec2)
    name = f"web-{uuid.uuid4().hex[:8]}"
    made = ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={"ImageId": old, "InstanceType": "t3.small"},
        TagSpecifications=[{"ResourceType": "launch-template",
                            "Tags": [{"Key": "amiforge:rollout", "Value": "st"}]}])
    template_id = made["LaunchTemplate"]["LaunchTemplateId"]
    current = lt_api.default_version(ec2, name)
    assert current is not None
    assert (current.template_id, current.name, current.version, current.image_id) == (
        template_id, name, 1, old)
    assert current.tags == {"amiforge:rollout": "st"}
    assert lt_api.default_version(ec2, template_id) == current

    version = lt_api.add_version(ec2, template_id, source_version=1, image_id=new,
                                 description="amiforge: recipe web build b1", token="b1-x")
    assert version == 2
    lt_api.set_default(ec2, template_id, version)
    moved = lt_api.default_version(ec2, name)
    assert moved is not None and (moved.version, moved.image_id) == (2, new)
    data = ec2.describe_launch_template_versions(
        LaunchTemplateId=template_id, Versions=["2"])["LaunchTemplateVersions"][0]
    assert data["LaunchTemplateData"]["InstanceType"] == "t3.small"  # copied from 1


def test_a_template_that_does_not_exist_reads_as_none(aws: AwsContext) -> None:
    ec2 = aws.client("ec2")
    assert lt_api.default_version(ec2, f"nope-{uuid.uuid4().hex[:8]}") is None
    assert lt_api.default_version(ec2, "lt-0123456789abcdef0") is None


def test_a_retried_add_with_the_same_token_returns_the_same_version(aws: AwsContext) -> None:
    ec2 = aws.client("ec2")
    old, new = image(ec2), image(ec2)
    template_id = ec2.create_launch_template(
        LaunchTemplateName=f"web-{uuid.uuid4().hex[:8]}", LaunchTemplateData={"ImageId": old}
    )["LaunchTemplate"]["LaunchTemplateId"]
    first = lt_api.add_version(ec2, template_id, source_version=1, image_id=new,
                               description="d", token="build-1-t")
    again = lt_api.add_version(ec2, template_id, source_version=1, image_id=new,
                               description="d", token="build-1-t")
    assert first == again == 2
    other = lt_api.add_version(ec2, template_id, source_version=1, image_id=new,
                               description="d", token="build-2-t")
    assert other == 3
