"""The consumer examples in examples/consumers: lint-clean, IMDSv2, wired to amiforge."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.decode.cfn_yaml import loads

CONSUMERS = Path(__file__).resolve().parents[2] / "examples" / "consumers"
CUSTOM_RESOURCE = CONSUMERS / "launch-from-custom-resource.yaml"
SSM_PARAMETER = CONSUMERS / "launch-from-ssm-parameter.yaml"


def template(path: Path) -> dict:
    return loads(path.read_text())


def test_the_examples_are_the_two_documented_ones() -> None:
    assert sorted(p.name for p in CONSUMERS.glob("*.yaml")) == [
        CUSTOM_RESOURCE.name, SSM_PARAMETER.name]


def test_cfn_lint_reports_nothing() -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(CUSTOM_RESOURCE), str(SSM_PARAMETER)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("path", [CUSTOM_RESOURCE, SSM_PARAMETER], ids=lambda p: p.stem)
def test_every_instance_requires_imdsv2(path: Path) -> None:
    instances = [r for r in template(path)["Resources"].values()
                 if r["Type"] == "AWS::EC2::Instance"]
    assert instances
    for instance in instances:
        options = instance["Properties"]["MetadataOptions"]
        assert options["HttpTokens"] == "required"
        assert options["HttpEndpoint"] == "enabled"


def test_custom_resource_imports_the_service_token_of_a_named_stack() -> None:
    doc = template(CUSTOM_RESOURCE)
    latest = doc["Resources"]["Latest"]
    assert latest["Type"] == "Custom::LatestAmi"
    assert latest["Properties"]["ServiceToken"] == {
        "Fn::ImportValue": {"Fn::Sub": "${AmiforgeStack}-LatestAmiServiceToken"}}
    assert latest["Properties"]["Recipe"] == {"Ref": "Recipe"}
    assert doc["Parameters"]["AmiforgeStack"]["Default"] == "amiforge"
    assert doc["Resources"]["Instance"]["Properties"]["ImageId"] == {
        "Fn::GetAtt": ["Latest", "ImageId"]}
    outputs = {k: v["Value"] for k, v in doc["Outputs"].items()}
    for attribute in ("ImageId", "ImageName", "BuildId", "CreationDate"):
        assert outputs[attribute] == {"Fn::GetAtt": ["Latest", attribute]}


def test_ssm_parameter_is_typed_and_defaults_to_the_latest_parameter() -> None:
    doc = template(SSM_PARAMETER)
    parameter = doc["Parameters"]["ImageId"]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert parameter["Default"] == "/amiforge/web/latest"
    assert doc["Resources"]["Instance"]["Properties"]["ImageId"] == {"Ref": "ImageId"}
