"""What a build template is given (core/template_parameters.py): ``build.parameters`` and
the network are checked by ``validate`` against the template's declared parameters, and
become CreateStack's parameters only for what the template declares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amiforge.core.build_template import template_problems
from amiforge.core.model import Recipe
from amiforge.core.parse import recipe_from_document
from amiforge.core.recipes import load_recipes
from amiforge.core.template_parameters import stack_parameters
from amiforge.errors import RecipeInvalid

TEMPLATE = """\
Parameters:
  BaseImageId: {Type: AWS::EC2::Image::Id}
  InstanceType: {Type: String, Default: t3.small, AllowedValues: [t3.small, t3.large]}
  AppVersion: {Type: String}
  SubnetId: {Type: AWS::EC2::Subnet::Id}
  SecurityGroupIds: {Type: "List<AWS::EC2::SecurityGroup::Id>"}
Resources:
  Builder:
    Type: AWS::EC2::Instance
    Properties: {ImageId: !Ref BaseImageId, SubnetId: !Ref SubnetId}
Outputs:
  InstanceId: {Value: !Ref Builder}
"""
BUILD = ("  cloudformation: templates/t.yaml\n  subnet_id: subnet-0123abcd\n"
         "  parameters: {AppVersion: '2.4'}\n")


def write(tmp_path: Path, build: str = BUILD, template: str = TEMPLATE,
          platform: str = "") -> Path:
    (tmp_path / "templates").mkdir(exist_ok=True)
    (tmp_path / "templates" / "t.yaml").write_text(template)
    (tmp_path / "r.yaml").write_text(f"name: r\nbase: {{ssm_parameter: /p}}\nbuild:\n{platform}"
                                     f"{build}")
    return tmp_path


def problems(tmp_path: Path) -> list[tuple[str | None, str]]:
    with pytest.raises(RecipeInvalid) as caught:
        load_recipes(tmp_path)
    return [(p.field, p.message) for p in caught.value.problems]


def test_parameters_and_network_that_the_template_declares_pass(tmp_path: Path) -> None:
    (recipe,) = load_recipes(write(tmp_path))
    assert recipe.build.parameters == {"AppVersion": "2.4"}
    assert recipe.build.subnet_id == "subnet-0123abcd"
    declared = {"BaseImageId", "InstanceType", "AppVersion", "SubnetId", "SecurityGroupIds"}
    assert stack_parameters(recipe, declared, base_ami="ami-0123456789abcdef0",
                            build_id="b-1", builder_security_group="sg-0builder",
                            boundary_arn=None) == {
        "BaseImageId": "ami-0123456789abcdef0", "AppVersion": "2.4",
        "SubnetId": "subnet-0123abcd", "SecurityGroupIds": "sg-0builder"}


def test_a_parameter_with_no_default_and_no_value_is_refused_naming_it(tmp_path: Path) -> None:
    write(tmp_path, BUILD.replace("  parameters: {AppVersion: '2.4'}\n", ""))
    assert problems(tmp_path) == [(
        "build.parameters", "templates/t.yaml declares the parameter AppVersion with no "
        "Default and the recipe gives it no value: add build.parameters: "
        "{AppVersion: VALUE}, or give it a Default in the template")]


def test_a_missing_subnet_says_to_set_build_subnet_id(tmp_path: Path) -> None:
    write(tmp_path, BUILD.replace("  subnet_id: subnet-0123abcd\n", ""))
    assert problems(tmp_path) == [(
        "build.subnet_id", "templates/t.yaml declares the parameter SubnetId with no Default "
        "and the recipe gives it no value: set build.subnet_id (amiforge passes it as "
        "SubnetId), or give it a Default")]


def test_an_unknown_parameter_is_refused_with_the_nearest_name(tmp_path: Path) -> None:
    write(tmp_path, BUILD.replace("{AppVersion: '2.4'}", "{AppVersion: '2', AppVersoin: x}"))
    assert problems(tmp_path) == [(
        "build.parameters.AppVersoin", "templates/t.yaml declares no parameter AppVersoin "
        "(did you mean AppVersion?); remove it or declare it in the template")]


def test_network_settings_the_template_cannot_take_are_refused(tmp_path: Path) -> None:
    template = TEMPLATE.replace("  SubnetId: {Type: AWS::EC2::Subnet::Id}\n", "").replace(
        ", SubnetId: !Ref SubnetId", "").replace(
        '  SecurityGroupIds: {Type: "List<AWS::EC2::SecurityGroup::Id>"}\n', "")
    write(tmp_path, BUILD + "  security_group_ids: [sg-0123abcd]\n", template)
    found = problems(tmp_path)
    assert [field for field, _ in found] == ["build.subnet_id", "build.security_group_ids"]
    assert found[1][1] == (
        "templates/t.yaml declares no parameter SecurityGroupIds, so the build stack cannot "
        "take it; declare SecurityGroupIds (Type: List<AWS::EC2::SecurityGroup::Id>) and "
        "use it in the instance's properties, or remove build.security_group_ids")


def test_a_value_outside_allowed_values_is_refused(tmp_path: Path) -> None:
    write(tmp_path, BUILD.replace("{AppVersion: '2.4'}", "{AppVersion: '2', "
                                  "InstanceType: m5.24xlarge}"))
    assert problems(tmp_path) == [(
        "build.parameters.InstanceType", "'m5.24xlarge' is not one of the template's "
        "AllowedValues for InstanceType: t3.small, t3.large")]


@pytest.mark.parametrize(("parameters", "field", "message"), [
    ("{BaseImageId: ami-0123456789abcdef0}", "build.parameters.BaseImageId",
     "amiforge passes BaseImageId itself (the base AMI amiforge resolved); remove it from "
     "build.parameters"),
    ("{SubnetId: subnet-1}", "build.parameters.SubnetId",
     "amiforge passes SubnetId itself (from build.subnet_id); remove it from "
     "build.parameters"),
    ("{AppVersion: {a: 1}}", "build.parameters.AppVersion",
     "must be a string, number, boolean or list of those, got a mapping"),
    ("[AppVersion]", "build.parameters", "must be a mapping of template parameter name: "
     "value, got a list (for example parameters: {InstanceType: t3.large})"),
    ("{App-Version: x}", "build.parameters", "'App-Version' is not a template parameter "
     "name; names are letters and digits, like InstanceType"),
])
def test_bad_parameters_are_named(tmp_path: Path, parameters: str, field: str,
                                  message: str) -> None:
    write(tmp_path, BUILD.replace("{AppVersion: '2.4'}", parameters))
    assert (field, message) in problems(tmp_path)


def test_values_are_written_as_cloudformation_takes_them(tmp_path: Path) -> None:
    write(tmp_path, BUILD.replace("{AppVersion: '2.4'}",
                                  "{AppVersion: 3, Debug: true, Zones: [a, b]}"),
          TEMPLATE.replace("Parameters:\n", "Parameters:\n  Debug: {Type: String}\n"
                           "  Zones: {Type: CommaDelimitedList}\n"))
    (recipe,) = load_recipes(tmp_path)
    assert recipe.build.parameters == {"AppVersion": "3", "Debug": "true", "Zones": "a,b"}


def test_parameters_are_part_of_the_hash_and_survive_publishing(tmp_path: Path) -> None:
    (recipe,) = load_recipes(write(tmp_path))
    again = recipe_from_document(json.loads(json.dumps(recipe.to_document())))
    assert again.build.parameters == recipe.build.parameters
    assert again.hash == recipe.hash
    write(tmp_path, BUILD.replace("'2.4'", "'2.5'"))
    assert load_recipes(tmp_path)[0].hash != recipe.hash


def test_parameters_on_a_script_recipe_are_refused(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("name: r\nbase: {ssm_parameter: /p}\n"
                                     "build: {script: 'true', parameters: {A: b}}\n")
    assert problems(tmp_path) == [(
        "build.parameters", "applies only to a build.cloudformation recipe: the values are "
        "passed to its build template; remove build.parameters")]


def test_windows_build_templates_are_refused_with_the_reason(tmp_path: Path) -> None:
    write(tmp_path, platform="  platform: windows\n")
    [(field, message)] = problems(tmp_path)
    assert field == "build.platform"
    assert message.startswith("a Windows build cannot come from a build template: a Windows "
                              "image must be generalised by sysprep")
    assert "build.user_data with platform: windows" in message


def test_the_recipe_kms_key_fills_a_declared_kms_parameter(tmp_path: Path) -> None:
    template = TEMPLATE.replace("Parameters:\n", "Parameters:\n  KmsKeyId: {Type: String}\n")
    write(tmp_path, BUILD, template)
    assert problems(tmp_path) == [("image.kms_key_id", (
        "templates/t.yaml declares the parameter KmsKeyId with no Default and the recipe "
        "gives it no value: set image.kms_key_id (amiforge passes it as KmsKeyId), or give "
        "it a Default"))]
    (tmp_path / "r.yaml").write_text((tmp_path / "r.yaml").read_text()
                                     + "image: {kms_key_id: alias/golden}\n")
    (recipe,) = load_recipes(tmp_path)
    assert stack_parameters(recipe, {"KmsKeyId"}, base_ami="ami-1", build_id="b",
                            builder_security_group=None, boundary_arn=None) == {
        "KmsKeyId": "alias/golden"}


def iam(resources: str, *, boundary: bool = True) -> list[str]:
    head = "Parameters:\n  BaseImageId: {Type: String}\n"
    if boundary:
        head += "  RolePermissionsBoundary: {Type: String}\n"
    text = (head + "Resources:\n  Builder: {Type: AWS::EC2::Instance}\n" + resources
            + "Outputs:\n  InstanceId: {Value: !Ref Builder}\n")
    return template_problems("t.yaml", text)


def test_bounded_roles_and_instance_profiles_pass() -> None:
    assert iam("  Role:\n    Type: AWS::IAM::Role\n    Properties:\n"
               "      PermissionsBoundary: !Ref RolePermissionsBoundary\n"
               "      RoleName: !Sub 'amiforge-build-${AWS::StackName}'\n"
               "  Profile:\n    Type: AWS::IAM::InstanceProfile\n"
               "    Properties: {Roles: [!Ref Role]}\n") == []


@pytest.mark.parametrize(("resources", "expected"), [
    ("  Role: {Type: AWS::IAM::Role, Properties: {}}\n",
     "t.yaml: role 'Role' has no PermissionsBoundary: the build stack may only create roles "
     "bounded by the stack's boundary; declare the parameter RolePermissionsBoundary (Type: "
     "String) and set PermissionsBoundary: !Ref RolePermissionsBoundary"),
    ("  Role: {Type: AWS::IAM::Role, Properties: {PermissionsBoundary: "
     "!Ref RolePermissionsBoundary, RoleName: admin}}\n",
     "t.yaml: resource 'Role' has the RoleName 'admin'; build-template IAM names must start "
     "with amiforge-build- (or leave RoleName out: CloudFormation then names it after the "
     "build stack)"),
    ("  Profile: {Type: AWS::IAM::InstanceProfile, Properties: {Path: /ops/}}\n",
     "t.yaml: resource 'Profile' sets a Path; build-template IAM lives at the root path "
     "(remove Path)"),
    ("  User: {Type: AWS::IAM::User}\n",
     "t.yaml: resource 'User' is an AWS::IAM::User; a build template may create only "
     "AWS::IAM::Role, AWS::IAM::InstanceProfile, AWS::IAM::Policy (the build stack's role "
     "can create nothing else in IAM)"),
])
def test_iam_beyond_the_opt_in_set_is_refused(resources: str, expected: str) -> None:
    assert iam(resources) == [expected]


def test_a_bounded_role_needs_the_boundary_parameter_declared() -> None:
    assert iam("  Role: {Type: AWS::IAM::Role, Properties: {PermissionsBoundary: "
               "!Ref RolePermissionsBoundary}}\n", boundary=False) == [
        "t.yaml: role 'Role' refers to RolePermissionsBoundary, which the template does "
        "not declare; declare RolePermissionsBoundary (Type: String)"]


def test_the_boundary_is_passed_when_the_stack_allows_iam(tmp_path: Path) -> None:
    (recipe,) = load_recipes(write(tmp_path))
    assert stack_parameters(recipe, {"RolePermissionsBoundary"}, base_ami="ami-1",
                            build_id="b", builder_security_group=None,
                            boundary_arn="arn:aws:iam::1:policy/b") == {
        "RolePermissionsBoundary": "arn:aws:iam::1:policy/b"}


@settings(max_examples=150, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8))
def test_no_parameters_value_makes_a_traceback(raw: object) -> None:
    document = {"name": "r", "base": {"ssm_parameter": "/p"},
                "build": {"cloudformation": "t.yaml", "parameters": raw},
                "files": {"t.yaml": "UGFyYW1ldGVyczoge0Jhc2VJbWFnZUlkOiB7VHlwZTogU3RyaW5nfX0K"}}
    try:
        recipe: Recipe = recipe_from_document(document)
    except RecipeInvalid:
        return
    assert all(isinstance(v, str) for v in recipe.build.parameters.values())
