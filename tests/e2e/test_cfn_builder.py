"""Issue 9 journeys: CloudFormation as the build's OS configuration (SABS), and Windows."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from amiforge.localcloud.testing import create_function
from amiforge.steps.build_stack import stack_name

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "recipes"

# A preflight check whose Create fails (as a failed cfn-signal would fail the stack); like
# any well-behaved custom resource it lets Delete succeed, or the stack could not go away.
FAILING_CHECK = textwrap.dedent('''\
    import json, urllib.request
    def handler(event, context):
        failed = event["RequestType"] == "Create"
        body = json.dumps({"Status": "FAILED" if failed else "SUCCESS",
                           "Reason": "disk check failed: /var is 97% full",
                           "PhysicalResourceId": "check", "StackId": event["StackId"],
                           "RequestId": event["RequestId"],
                           "LogicalResourceId": event["LogicalResourceId"]}).encode()
        request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT",
                                         headers={"Content-Type": ""})
        urllib.request.urlopen(request).read()
    ''')


def stack_status(aws: Any, build_id: str) -> str:
    try:
        stacks = aws.client("cloudformation").describe_stacks(
            StackName=stack_name(build_id))["Stacks"]
    except aws.client("cloudformation").exceptions.ClientError:
        return "GONE"
    return stacks[0]["StackStatus"] if stacks else "GONE"


def test_sabs_example_builds_and_its_build_stack_is_deleted(amiforge: Any, aws: Any,
                                                            tmp_path: Path) -> None:
    directory = tmp_path / "sabs"
    (directory / "templates").mkdir(parents=True)
    for name in ("sabs-web.yaml", "templates/sabs-web.yaml"):
        (directory / name).write_text((EXAMPLES / name).read_text())
    assert amiforge("publish", "--no-detect", str(directory)).exit_code == 0
    result = amiforge("build", "--wait", "sabs-web", output="json")
    assert result.exit_code == 0, result.output
    (build,) = json.loads(result.stdout)["builds"]
    assert build["status"] == "AVAILABLE"
    assert stack_status(aws, build["build_id"]) in {"GONE", "DELETE_COMPLETE",
                                                     "DELETE_IN_PROGRESS"}
    image = aws.client("ec2").describe_images(ImageIds=[build["image_id"]])["Images"][0]
    assert {t["Key"]: t["Value"] for t in image["Tags"]}["amiforge:build-id"] == build["build_id"]


def test_failed_build_stack_fails_the_build_with_its_events(amiforge: Any, aws: Any,
                                                            tmp_path: Path) -> None:
    check = create_function(aws.client("lambda"), aws.client("iam"), "preflight-check-fails",
                            FAILING_CHECK)
    directory = tmp_path / "bad"
    (directory / "templates").mkdir(parents=True)
    (directory / "templates" / "bad.yaml").write_text(textwrap.dedent(f"""\
        Parameters:
          BaseImageId: {{Type: "AWS::EC2::Image::Id"}}
        Resources:
          Preflight:
            Type: Custom::Preflight
            Properties:
              ServiceToken: {check}
          BuildInstance:
            Type: AWS::EC2::Instance
            DependsOn: Preflight
            Properties: {{ImageId: !Ref BaseImageId, InstanceType: t3.small}}
        Outputs:
          InstanceId: {{Value: !Ref BuildInstance}}
        """))
    (directory / "cfn-bad.yaml").write_text(textwrap.dedent("""\
        name: cfn-bad
        base:
          ssm_parameter: /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64
        build:
          platform: linux
          cloudformation: templates/bad.yaml
          timeout_minutes: 20
        """))
    assert amiforge("publish", "--no-detect", str(directory)).exit_code == 0
    result = amiforge("build", "--wait", "cfn-bad", output="json")
    assert result.exit_code == 1
    (build,) = json.loads(result.stdout)["builds"]
    assert build["status"] == "FAILED"
    assert "disk check failed: /var is 97% full" in build["reason"]
    assert stack_name(build["build_id"]) in build["reason"]
    assert stack_status(aws, build["build_id"]) in {"GONE", "DELETE_COMPLETE",
                                                     "DELETE_IN_PROGRESS"}


def test_failing_windows_script_is_failed_with_its_console_tail(
        amiforge: Any, local_cloud: Any, tmp_path: Path) -> None:
    local_cloud.release_base(name="Windows_Server-2022-English-Full-Base-e2e", owner="amazon",
                             ssm_parameter="/aws/service/ami-windows-latest/"
                                           "Windows_Server-2022-English-Full-Base",
                             platform="windows")
    directory = tmp_path / "win"
    (directory / "scripts").mkdir(parents=True)
    (directory / "scripts" / "iis.ps1").write_text(
        "# amiforge-sim: fail\nInstall-WindowsFeature -Name Web-Server\nexit 1\n")
    (directory / "win-broken.yaml").write_text(textwrap.dedent("""\
        name: win-broken
        base:
          ssm_parameter: /aws/service/ami-windows-latest/Windows_Server-2022-English-Full-Base
        build:
          platform: windows
          user_data: scripts/iis.ps1
          retries: 0
        """))
    assert amiforge("publish", "--no-detect", str(directory)).exit_code == 0
    result = amiforge("build", "--wait", "win-broken", output="json")
    assert result.exit_code == 1
    (build,) = json.loads(result.stdout)["builds"]
    assert build["status"] == "FAILED"
    assert "build script failed" in build["reason"]
    history = amiforge("history", "win-broken")
    assert "AMIFORGE-RESULT: failure" in history.stdout


def test_the_sweeper_deletes_a_build_stack_left_behind(amiforge: Any, aws: Any,
                                                       stack: Any) -> None:
    """A finished build whose stack outlived it (its DeleteStack failed, or was never
    reached) loses the stack at the next sweep; a stack of a build this stack's catalog
    does not know (another amiforge stack's) is left alone."""
    cfn = aws.client("cloudformation")
    template = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    stack.catalog.start({"recipe": "leftover", "build_id": "left-1", "build_key": "left-1"})
    stack.catalog.mark_failed("leftover", "left-1", reason="stack left behind")
    for build_id in ("left-1", "foreign-1"):
        cfn.create_stack(StackName=stack_name(build_id), TemplateBody=template,
                         Tags=[{"Key": "amiforge:recipe", "Value": "leftover"},
                               {"Key": "amiforge:build-id", "Value": build_id}])
    dry = json.loads(amiforge("sweep", "--dry-run", output="json").stdout)
    planned = {a["resource"]: a["action"] for a in dry["actions"] if a["kind"] == "stack"}
    assert planned == {stack_name("left-1"): "delete", stack_name("foreign-1"): "leave"}
    assert stack_status(aws, "left-1") == "CREATE_COMPLETE"  # a dry run changes nothing
    result = amiforge("sweep", output="json")
    assert result.exit_code == 0, result.output
    done = {a["resource"]: a["outcome"] for a in json.loads(result.stdout)["actions"]
            if a["kind"] == "stack"}
    assert done == {stack_name("left-1"): "done", stack_name("foreign-1"): "planned"}
    assert stack_status(aws, "left-1") in {"GONE", "DELETE_COMPLETE", "DELETE_IN_PROGRESS"}
    assert stack_status(aws, "foreign-1") == "CREATE_COMPLETE"
