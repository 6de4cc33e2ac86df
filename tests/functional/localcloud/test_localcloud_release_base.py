"""``release_base`` in-process and through ``amiforge local up`` / ``local release-base``."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from tests.helpers import with_ctrl_c

AMAZON = "137112412989"
AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"


def family(tag: str) -> tuple[str, str]:
    """A release name of a family private to this test, and the glob that finds it."""
    return f"amiforge-test-{tag}-2024.1.7-x86_64", f"amiforge-test-{tag}-2024.*-x86_64"


def newest(ec2: Any, glob: str, owner: str = "amazon") -> dict:
    images = ec2.describe_images(Owners=[owner],
                                 Filters=[{"Name": "name", "Values": [glob]}])["Images"]
    return max(images, key=lambda image: image["CreationDate"])


def test_release_base_is_the_newest_of_its_family(local_cloud: Any) -> None:
    ec2, ssm = boto3.client("ec2"), boto3.client("ssm")
    tag = uuid.uuid4().hex[:8]
    name, glob = family(tag)
    older = local_cloud.release_base(name.replace("1.7", "1.6"))
    parameter = f"/localcloud-test/{tag}/latest"

    image_id = local_cloud.release_base(name, ssm_parameter=parameter)

    image = newest(ec2, glob)
    assert image["ImageId"] == image_id != older
    assert image["Name"] == name
    assert image["OwnerId"] == AMAZON
    assert image["ImageOwnerAlias"] == "amazon"
    assert image["Public"] is True
    assert image["State"] == "available"
    assert image["Architecture"] == "x86_64"
    stored = ssm.get_parameter(Name=parameter)["Parameter"]
    assert stored["Value"] == image_id
    assert stored["DataType"] == "aws:ec2:image"


def test_release_dated_in_the_past_keeps_its_date(local_cloud: Any) -> None:
    ec2 = boto3.client("ec2")
    name, glob = family(uuid.uuid4().hex[:8])
    current = local_cloud.release_base(name)

    backdated = local_cloud.release_base(name.replace("1.7", "1.8"), architecture="arm64",
                                         creation_date=datetime(2024, 3, 1, tzinfo=UTC))

    image = ec2.describe_images(ImageIds=[backdated])["Images"][0]
    assert image["CreationDate"].startswith("2024-03-01T00:00:00")
    assert image["Architecture"] == "arm64"
    assert newest(ec2, glob)["ImageId"] == current


def test_release_overwrites_an_aws_service_parameter(local_cloud: Any) -> None:
    # Another region, so the shared us-east-1 parameter other tests read is untouched.
    region = "ap-southeast-2"
    ssm = boto3.client("ssm", region_name=region)
    before = ssm.get_parameter(Name=AL2023)["Parameter"]

    image_id = local_cloud.release_base("al2023-ami-2099.0.0-kernel-6.1-x86_64",
                                        ssm_parameter=AL2023, region=region)

    after = ssm.get_parameter(Name=AL2023)["Parameter"]
    assert after["Value"] == image_id != before["Value"]
    assert after["Version"] == before["Version"] + 1
    ec2 = boto3.client("ec2", region_name=region)
    assert newest(ec2, "al2023-ami-2*-kernel-6.1-x86_64")["ImageId"] == image_id


def test_windows_release_sets_the_platform(local_cloud: Any) -> None:
    name = f"Windows_Server-2022-English-Full-Base-{uuid.uuid4().hex[:6]}"
    image_id = local_cloud.release_base(name, platform="windows")

    image = boto3.client("ec2").describe_images(ImageIds=[image_id])["Images"][0]
    assert image["Platform"] == "windows"


# -- through the CLI, against `amiforge local up` in another process ------------------------

AMIFORGE = [sys.executable, "-c", "from amiforge.cli.main import main; main()"]


def amiforge(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AMIFORGE, *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def local_up() -> Any:
    process = subprocess.Popen(
        with_ctrl_c([*AMIFORGE, "local", "up", "--port", "0", "--builder-seconds", "0.5"]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline() if process.stdout else ""
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", first)
        assert match, f"unexpected first line {first!r}; stderr: {process.stderr.read()}"
        process.endpoint = match.group(1)  # type: ignore[attr-defined]
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_cli_release_base_against_local_up(local_up: Any) -> None:
    endpoint = local_up.endpoint
    tag = uuid.uuid4().hex[:8]
    name, glob = family(tag)
    parameter = f"/localcloud-test/{tag}/latest"

    text = amiforge("--endpoint-url", endpoint, "local", "release-base", "--name", name,
                    "--ssm-parameter", parameter)
    as_json = amiforge("--endpoint-url", endpoint, "--output", "json", "local",
                       "release-base", "--name", name.replace("1.7", "1.9"))

    assert text.returncode == 0, text.stderr
    image_id = text.stdout.strip()
    assert re.fullmatch(r"ami-[0-9a-f]+", image_id)
    assert as_json.returncode == 0, as_json.stderr
    second = json.loads(as_json.stdout)["image_id"]
    ec2 = boto3.client("ec2", endpoint_url=endpoint)
    ssm = boto3.client("ssm", endpoint_url=endpoint)
    assert newest(ec2, glob)["ImageId"] == second
    assert {i["ImageId"] for i in ec2.describe_images(
        Owners=["amazon"], Filters=[{"Name": "name", "Values": [glob]}])["Images"]} == {
        image_id, second}
    assert ssm.get_parameter(Name=parameter)["Parameter"]["Value"] == image_id

    local_up.send_signal(signal.SIGINT)
    out, err = local_up.communicate(timeout=20)
    assert local_up.returncode == 0, err
    assert "stopped" in out


def test_cli_release_base_reports_a_missing_cloud_in_one_line() -> None:
    result = amiforge("--endpoint-url", "http://127.0.0.1:9", "local", "release-base",
                      "--name", "x")

    assert result.returncode == 1
    assert result.stderr.startswith("amiforge: error: cannot reach the local cloud at "
                                    "http://127.0.0.1:9")
    assert "Traceback" not in result.stderr
