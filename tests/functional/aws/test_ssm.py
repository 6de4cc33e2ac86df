"""aws/ssm.py on the local cloud's SSM: the latest parameter and its absence."""

from __future__ import annotations

from collections.abc import Callable

from amiforge.aws import ssm as ssm_api
from amiforge.aws.session import AwsContext


def test_latest_is_put_read_and_deleted_once(aws: AwsContext, unique: Callable[[str], str]) -> None:
    ssm, ec2 = aws.client("ssm"), aws.client("ec2")
    recipe = unique("web")
    image = ec2.register_image(Name=recipe, RootDeviceName="/dev/xvda")["ImageId"]
    name = ssm_api.put_latest(ssm, recipe, image, description="x", stack="amiforge")
    assert name == f"/amiforge/{recipe}/latest"
    assert ssm_api.get_value(ssm, name) == image
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
    assert {"Key": "amiforge:stack", "Value": "amiforge"} in tags
    assert ssm_api.delete_latest(ssm, recipe) is True
    assert ssm_api.delete_latest(ssm, recipe) is False
    assert ssm_api.get_value(ssm, name) is None


def test_get_parameters_answers_found_and_invalid_in_batches(aws: AwsContext, unique: Callable[[str], str]) -> None:
    ssm = aws.client("ssm")
    names = [f"/{unique('p')}/{n}" for n in range(12)]  # more than one batch of 10
    for n, name in enumerate(names[:11]):
        ssm.put_parameter(Name=name, Value=f"v{n}", Type="String")
    found, invalid = ssm_api.get_parameters(ssm, names)
    assert found == {name: f"v{n}" for n, name in enumerate(names[:11])}
    assert invalid == [names[11]]
