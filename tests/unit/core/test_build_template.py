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
                                   "subnet_id: subnet-0123abcd", "volume_size_gb: 30",
                                   "security_group_ids: [sg-0123abcd]"])
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
