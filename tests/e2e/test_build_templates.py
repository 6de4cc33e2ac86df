"""Issue 22 journeys: build templates as first-class. A template given build.parameters and
the recipe's subnet builds; one missing a value is refused by `validate`; a 60 KB
template builds through the artifact bucket."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import E2E_STACK_PARAMETERS, STACK
from tests.e2e.test_stack_lifecycle import runner_for

from amiforge.deploy import stack as stack_api

pytestmark = pytest.mark.e2e

AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"
TEMPLATE = """\
Parameters:
  BaseImageId: {Type: "AWS::EC2::Image::Id"}
  AppVersion: {Type: String}
  SubnetId: {Type: "AWS::EC2::Subnet::Id"}
  SecurityGroupIds: {Type: "List<AWS::EC2::SecurityGroup::Id>"}
Resources:
  BuildInstance:
    Type: AWS::EC2::Instance
    Metadata:
      AWS::CloudFormation::Init:
        config:
          files:
            /etc/app.conf: {content: "PADDING"}
    Properties:
      ImageId: !Ref BaseImageId
      InstanceType: t3.small
      SubnetId: !Ref SubnetId
      SecurityGroupIds: !Ref SecurityGroupIds
      Tags: [{Key: app-version, Value: !Ref AppVersion}]
Outputs:
  InstanceId: {Value: !Ref BuildInstance}
"""


def write(directory: Path, name: str, build: str, padding: int = 0) -> Path:
    (directory / "templates").mkdir(parents=True, exist_ok=True)
    (directory / "templates" / f"{name}.yaml").write_text(
        TEMPLATE.replace("PADDING", "x" * padding))
    (directory / f"{name}.yaml").write_text(
        f"name: {name}\nbase:\n  ssm_parameter: {AL2023}\nbuild:\n"
        f"  cloudformation: templates/{name}.yaml\n" + textwrap.indent(build, "  "))
    return directory


def built(amiforge: Any, directory: Path, recipe: str) -> dict[str, Any]:
    assert amiforge("publish", "--no-detect", str(directory)).exit_code == 0
    result = amiforge("build", "--wait", recipe, output="json")
    assert result.exit_code == 0, result.output
    (build,) = json.loads(result.stdout)["builds"]
    assert build["status"] == "AVAILABLE", build
    history = json.loads(amiforge("history", recipe, output="json").stdout)
    return next(b for b in history["builds"] if b["build_id"] == build["build_id"])


def test_a_template_with_parameters_and_a_subnet_builds(amiforge: Any, aws: Any,
                                                        tmp_path: Path) -> None:
    ec2 = aws.client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    directory = write(tmp_path / "tpl", "tpl-params",
                      f"subnet_id: {subnet}\nparameters: {{AppVersion: '2.4'}}\n")
    build = built(amiforge, directory, "tpl-params")
    (reservation,) = ec2.describe_instances(InstanceIds=[build["instance_id"]])["Reservations"]
    instance = reservation["Instances"][0]
    assert instance["SubnetId"] == subnet
    assert {t["Key"]: t["Value"] for t in instance["Tags"]}["app-version"] == "2.4"
    # No groups in the recipe: the template's SecurityGroupIds is the stack's builder group.
    (group,) = instance["SecurityGroups"]
    (described,) = ec2.describe_security_groups(GroupIds=[group["GroupId"]])["SecurityGroups"]
    tags = {t["Key"]: t["Value"] for t in described["Tags"]}
    assert (tags["amiforge:stack"], tags["amiforge:role"]) == (STACK, "builder-network")


def test_a_template_missing_a_value_is_refused_by_validate(amiforge: Any,
                                                           tmp_path: Path) -> None:
    directory = write(tmp_path / "missing", "tpl-missing", "subnet_id: subnet-0123abcd\n")
    result = amiforge("validate", str(directory))
    assert result.exit_code == 2
    assert ("build.parameters: templates/tpl-missing.yaml declares the parameter AppVersion "
            "with no Default and the recipe gives it no value: add build.parameters: "
            "{AppVersion: VALUE}") in result.output


def test_a_60_kb_template_builds_through_the_artifact_bucket(amiforge: Any, aws: Any,
                                                             tmp_path: Path) -> None:
    subnet = aws.client("ec2").describe_subnets()["Subnets"][0]["SubnetId"]
    directory = write(tmp_path / "big", "tpl-big",
                      f"subnet_id: {subnet}\nparameters: {{AppVersion: '3'}}\n",
                      padding=60_000)
    body = (directory / "templates" / "tpl-big.yaml").read_bytes()
    assert len(body) > 60_000
    built(amiforge, directory, "tpl-big")
    account = aws.client("sts").get_caller_identity()["Account"]
    key = f"build-templates/{hashlib.sha256(body).hexdigest()}.template"
    stored = aws.client("s3").get_object(
        Bucket=f"amiforge-artifacts-{account}-{aws.resolved_region}", Key=key)
    assert stored["Body"].read() == body


ROLE_TEMPLATE = """\
Parameters:
  BaseImageId: {Type: "AWS::EC2::Image::Id"}
  RolePermissionsBoundary: {Type: String}
Resources:
  BuilderRole:
    Type: AWS::IAM::Role
    Properties:
      PermissionsBoundary: !Ref RolePermissionsBoundary
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allow, Principal: {Service: ec2.amazonaws.com}, Action: "sts:AssumeRole"}
  BuilderProfile:
    Type: AWS::IAM::InstanceProfile
    Properties: {Roles: [!Ref BuilderRole]}
  BuildInstance:
    Type: AWS::EC2::Instance
    Properties:
      ImageId: !Ref BaseImageId
      InstanceType: t3.small
      IamInstanceProfile: !Ref BuilderProfile
Outputs:
  InstanceId: {Value: !Ref BuildInstance}
"""


def role_recipe(directory: Path) -> Path:
    (directory / "templates").mkdir(parents=True)
    (directory / "templates" / "role.yaml").write_text(ROLE_TEMPLATE)
    (directory / "tpl-role.yaml").write_text(
        f"name: tpl-role\nbase:\n  ssm_parameter: {AL2023}\nbuild:\n"
        "  cloudformation: templates/role.yaml\n")
    return directory


def test_a_template_making_a_role_needs_the_stack_s_opt_in(
        amiforge: Any, local_cloud: Any, aws: Any, tmp_path: Path) -> None:
    directory = role_recipe(tmp_path / "role")
    assert amiforge("publish", "--no-detect", str(directory)).exit_code == 0
    refused = amiforge("build", "--wait", "tpl-role", output="json")
    assert refused.exit_code == 1
    (build,) = json.loads(refused.stdout)["builds"]
    assert build["status"] == "FAILED"
    assert "creates IAM resources (CAPABILITY_IAM), which this stack does not allow build " \
           "templates: deploy it with -p BuildTemplateIam=enabled" in build["reason"]

    name = "amiforge-tpl-iam"
    stack_api.deploy(aws, name, {**E2E_STACK_PARAMETERS, "BuildTemplateIam": "enabled"})
    try:
        run = runner_for(local_cloud, name)
        assert run("publish", "--no-detect", str(directory)).exit_code == 0
        result = run("build", "--wait", "tpl-role")
        assert result.exit_code == 0, result.output
        (build,) = json.loads(result.stdout)["builds"]
        assert build["status"] == "AVAILABLE", build
        # The build stack's function is given the stack's boundary for the roles.
        environment = aws.client("lambda").get_function_configuration(
            FunctionName=f"{name}-create-build-stack")["Environment"]["Variables"]
        boundary = aws.client("iam").get_policy(
            PolicyArn=environment["AMIFORGE_BUILD_ROLE_BOUNDARY"])["Policy"]
        assert boundary["Description"].startswith("Permissions boundary of IAM roles")
    finally:
        stack_api.destroy(aws, name)
