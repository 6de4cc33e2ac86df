"""`validate` refuses a build template amiforge could not use, before any build starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from amiforge.core.build_template import template_problems
from amiforge.core.recipes import load_recipes
from amiforge.errors import RecipeInvalid

GOOD = """\
Parameters:
  BaseImageId: {Type: AWS::EC2::Image::Id}
Resources:
  Builder:
    Type: AWS::EC2::Instance
    Properties: {ImageId: !Ref BaseImageId}
Outputs:
  InstanceId:
    Value: !Ref Builder
"""


def test_a_template_with_the_parameter_and_the_output_passes() -> None:
    assert template_problems("t.yaml", GOOD) == []


def test_json_templates_are_read_too() -> None:
    text = ('{"Parameters": {"BaseImageId": {"Type": "String"}}, "Resources": {"B": '
            '{"Type": "AWS::EC2::Instance"}}, "Outputs": {"InstanceId": {"Value": "x"}}}')
    assert template_problems("t.json", text) == []


@pytest.mark.parametrize(("text", "expected"), [
    (GOOD.replace("  InstanceId:\n    Value: !Ref Builder\n", "  Other: {Value: x}\n"),
     "has no output InstanceId"),
    (GOOD.replace("BaseImageId: {Type", "ImageId: {Type"), "does not declare the parameter "
                                                           "BaseImageId"),
    ("- a\n- list\n", "is not a CloudFormation template"),
    ("Resources: [\n", "is not a valid YAML or JSON template (line 2)"),
    ("Parameters: {BaseImageId: {}}\nOutputs: {InstanceId: {Value: x}}\n", "has no Resources"),
])
def test_each_problem_is_named(text: str, expected: str) -> None:
    problems = template_problems("templates/t.yaml", text)
    assert len(problems) == 1 and expected in problems[0], problems
    assert problems[0].startswith("templates/t.yaml")


def test_validate_reports_it_against_the_field(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "t.yaml").write_text(GOOD.replace("InstanceId:", "Id:"))
    (tmp_path / "r.yaml").write_text(
        "name: r\nbase: {ssm_parameter: /p}\nbuild: {cloudformation: templates/t.yaml}\n")
    with pytest.raises(RecipeInvalid) as caught:
        load_recipes(tmp_path)
    assert "build.cloudformation: templates/t.yaml has no output InstanceId" in str(caught.value)


@pytest.mark.parametrize("field", ["instance_types: [t3.large]", "retries: 2",
                                   "volume_size_gb: 30", "associate_public_ip: true"])
def test_fields_the_template_decides_are_refused(tmp_path: Path, field: str) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "t.yaml").write_text(GOOD)
    (tmp_path / "r.yaml").write_text(
        "name: r\nbase: {ssm_parameter: /p}\n"
        f"build: {{cloudformation: templates/t.yaml, {field}}}\n")
    with pytest.raises(RecipeInvalid) as caught:
        load_recipes(tmp_path)
    name = field.split(":")[0]
    assert f"build.{name}: does not apply to a build.cloudformation recipe" in str(caught.value)


def test_a_shared_image_needs_the_template_to_take_the_key(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "t.yaml").write_text(GOOD)
    recipe = ("name: r\nbase: {ssm_parameter: /p}\nbuild: {cloudformation: templates/t.yaml}\n"
              "image: {share_with: ['111122223333'], kms_key_id: alias/golden}\n")
    (tmp_path / "r.yaml").write_text(recipe)
    with pytest.raises(RecipeInvalid) as caught:
        load_recipes(tmp_path)
    assert "does not declare the parameter KmsKeyId" in str(caught.value)
    (tmp_path / "templates" / "t.yaml").write_text(
        GOOD.replace("Parameters:\n", "Parameters:\n  KmsKeyId: {Type: String}\n"))
    assert load_recipes(tmp_path)[0].image.kms_key_id == "alias/golden"


@pytest.mark.parametrize(("kind", "ok"), [
    ("AWS::EC2::Instance", True), ("AWS::CloudFormation::WaitCondition", True),
    ("Custom::Seed", True), ("Alexa::ASK::Skill", True),
    ("AWS::EC2", False), ("EC2::Instance", False), ("Evil::Corp::Thing", False),
    ("AWS::EC2::Inst-ance", False), ("aws::ec2::instance", False), ("AWS::EC2::*", False),
])
def test_resource_types_must_look_like_cloudformation_types(kind: str, ok: bool) -> None:
    problems = template_problems("t.yaml", GOOD.replace("AWS::EC2::Instance", kind))
    if ok:
        assert problems == []
    else:
        assert problems == [f"t.yaml: resource 'Builder' has the unknown type {kind!r}; "
                            "CloudFormation types look like AWS::EC2::Instance (or "
                            "Custom::Name for a custom resource)"]


def test_a_resource_without_a_type_is_refused() -> None:
    assert template_problems("t.yaml", GOOD.replace("    Type: AWS::EC2::Instance\n", "")) == [
        "t.yaml: resource 'Builder' has no Type; give each resource a Type, like "
        "AWS::EC2::Instance"]


def test_a_template_over_the_inline_limit_passes_and_one_over_the_store_limit_does_not(
        ) -> None:
    """Over 51,200 bytes the build passes the template from the artifact bucket; past
    300,000 its base64 would not fit the recipe store's item."""
    big = GOOD + "#" + "x" * (60_000 - len(GOOD) - 1) + "\n"
    assert template_problems("t.yaml", big) == []
    huge = GOOD + "#" + "x" * (300_000 - len(GOOD) - 1) + "\n"
    assert len(huge.encode()) == 300_001
    assert template_problems("t.yaml", huge) == [
        "t.yaml is 300,001 bytes; a build template may be at most 300,000 bytes (it is "
        "published in the recipe's 400 KB store item): shorten it (move scripts out of the "
        "template into files the instance downloads)"]
    assert template_problems("t.yaml", huge[:-2] + "\n") == []


def test_a_450_kb_template_is_refused_by_validate_naming_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "cfn").mkdir()
    (tmp_path / "cfn" / "stack.yaml").write_text(GOOD + "#" + "x" * 450_000 + "\n")
    (tmp_path / "web.yaml").write_text(
        "name: web\nbase: {ssm_parameter: /aws/service/x}\n"
        "build: {cloudformation: cfn/stack.yaml}\n")
    with pytest.raises(RecipeInvalid) as info:
        load_recipes(tmp_path)
    [problem] = info.value.problems
    assert (problem.where, problem.field) == (str(tmp_path / "web.yaml"), "build.cloudformation")
    assert problem.message.startswith("cfn/stack.yaml is 450")
