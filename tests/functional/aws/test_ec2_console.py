"""The EC2 adapter reads the console as text: botocore already base64-decodes it."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from amiforge.aws import ec2 as ec2_api
from amiforge.core.userdata import parse_console, wrap
from amiforge.localcloud.testing import wait_for

SCRIPTS = {
    "linux": "#!/bin/bash\n# amiforge-sim: fail\nexit 1\n",
    # This Windows console once decoded (wrongly, a second time) into valid-looking noise.
    "windows": "# amiforge-sim: fail\nInstall-WindowsFeature -Name Web-Server\nexit 1\n",
}


@pytest.mark.parametrize("platform", sorted(SCRIPTS))
def test_console_output_carries_the_marker(local_cloud: Any, platform: str) -> None:
    ec2 = boto3.client("ec2", endpoint_url=local_cloud.endpoint)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    user_data = wrap(platform, SCRIPTS[platform], recipe_name="console", recipe_hash="0" * 64)
    instance_id = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, UserData=user_data,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [
            {"Key": "amiforge:role", "Value": "builder"},
            {"Key": "amiforge:recipe", "Value": f"console-{platform}"}]}],
    )["Instances"][0]["InstanceId"]
    wait_for(lambda: (ec2_api.describe_instance(ec2, instance_id) or {})
             .get("State", {}).get("Name") == "stopped" or None, timeout=30)
    verdict = parse_console(ec2_api.console_output(ec2, instance_id))
    assert (verdict.outcome, verdict.exit_code) == ("failure", 1)
