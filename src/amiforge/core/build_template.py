"""Checks on a CloudFormation build template (``build.cloudformation``) before it is published.

The build stack is created with the parameter ``BaseImageId`` and must output ``InstanceId``
(see docs/recipes.md): a template without them would only fail once a build had started, so
``validate`` says so instead. CloudFormation's short-form tags (``!Ref``, ``!Sub``...) are
read as plain values: only the template's shape is checked here, cfn-lint checks the rest.

IAM resources are the opt-in exception (stack parameter ``BuildTemplateIam``): only roles,
instance profiles and role policies, each role bounded by the stack's permissions boundary
and every name under :data:`IAM_NAME_PREFIX`, which is what the build stack's role may
create (deploy/template.yaml). The parameters a recipe passes are checked in
:mod:`amiforge.core.template_parameters`.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from amiforge.core.template_parameters import IAM_CAPABILITY_PARAMETER
from amiforge.core.yamlsafe import load_yaml

REQUIRED_PARAMETER = "BaseImageId"
REQUIRED_OUTPUT = "InstanceId"
KMS_PARAMETER = "KmsKeyId"
# CloudFormation takes 1 MB of template from S3 (a template over INLINE_TEMPLATE_MAX goes
# through the artifact bucket), but the recipe store keeps the template base64 in one
# 400 KB DynamoDB item with the recipe: 300,000 bytes leave room for the rest.
TEMPLATE_MAX = 300_000
# Build-template IAM: the names roles and instance profiles must start with (a generated
# name starts with the build stack's name, amiforge-build-...), and the IAM types a build
# template may create.
IAM_NAME_PREFIX = "amiforge-build-"
IAM_TYPES = ("AWS::IAM::Role", "AWS::IAM::InstanceProfile", "AWS::IAM::Policy")
# AWS::Service::Type (a few have a fourth part), Alexa::ASK::Skill, and custom resources.
# cfn-lint knows every type, but it is a dev dependency: this is what the Lambda can check.
RESOURCE_TYPE = re.compile(r"(?:AWS|Alexa)::[A-Za-z0-9]+::[A-Za-z0-9]+(?:::[A-Za-z0-9]+)?"
                           r"|Custom::[A-Za-z0-9_@-]{1,60}")


class _TemplateLoader(yaml.SafeLoader):
    """SafeLoader that accepts CloudFormation's ``!Tag`` short forms."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_TemplateLoader.add_multi_constructor("!", _any_tag)


def load_template(text: str) -> dict[str, Any] | None:
    """The template as data (JSON or YAML, short tags read as plain values); None if it is
    not a mapping or not YAML at all (``template_problems`` says why)."""
    try:
        template = load_yaml(text, _TemplateLoader)
    except yaml.YAMLError:
        return None
    return template if isinstance(template, dict) else None


def declared_parameters(text: str) -> dict[str, dict[str, Any]]:
    """The template's Parameters section (name -> its declaration); {} if it has none."""
    template = load_template(text)
    parameters = template.get("Parameters") if template else None
    if not isinstance(parameters, dict):
        return {}
    return {str(k): (v if isinstance(v, dict) else {}) for k, v in parameters.items()}


def iam_resources(template: dict[str, Any]) -> list[str]:
    """Logical ids of the template's IAM resources (they need the IAM capabilities)."""
    resources = template.get("Resources")
    if not isinstance(resources, dict):
        return []
    return sorted(str(name) for name, resource in resources.items()
                  if isinstance(resource, dict)
                  and str(resource.get("Type", "")).startswith("AWS::IAM::"))


def template_problems(path: str, text: str, *, kms_key: bool = False) -> list[str]:
    """What keeps ``text`` (the template at ``path``) from being a build template.

    With ``kms_key`` (the recipe sets ``image.kms_key_id`` and shares the image), the
    template must declare ``KmsKeyId``: the build's volumes, hence the image, must be
    encrypted with that customer-managed key for the accounts to launch it.
    """
    size = len(text.encode("utf-8"))
    if size > TEMPLATE_MAX:
        return [f"{path} is {size:,} bytes; a build template may be at most "
                f"{TEMPLATE_MAX:,} bytes (it is published in the recipe's 400 KB store "
                "item): shorten it (move scripts out of the template into files the "
                "instance downloads)"]
    try:
        template = load_yaml(text, _TemplateLoader)
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        return [f"{path} is not a valid YAML or JSON template{line}: "
                f"{getattr(err, 'problem', None) or err}"]
    if not isinstance(template, dict):
        return [f"{path} is not a CloudFormation template: expected a mapping with "
                "Parameters, Resources and Outputs"]
    problems = []
    if not isinstance(template.get("Resources"), dict) or not template["Resources"]:
        problems.append(f"{path} has no Resources; it must create the build instance")
    else:
        problems += _resource_type_problems(path, template["Resources"])
        problems += _iam_problems(path, template)
    parameters = template.get("Parameters")
    if not isinstance(parameters, dict) or REQUIRED_PARAMETER not in parameters:
        problems.append(f"{path} does not declare the parameter {REQUIRED_PARAMETER}: amiforge "
                        "passes the base AMI it resolved in it; add Parameters: "
                        f"{{{REQUIRED_PARAMETER}: {{Type: AWS::EC2::Image::Id}}}} and use it "
                        "as the instance's ImageId")
    if kms_key and (not isinstance(parameters, dict) or KMS_PARAMETER not in parameters):
        problems.append(f"{path} does not declare the parameter {KMS_PARAMETER}: the recipe "
                        "shares its image, which needs the volumes encrypted with its "
                        f"image.kms_key_id; declare {KMS_PARAMETER} (Type: String) and use it "
                        "as the KmsKeyId of the instance's encrypted volumes")
    outputs = template.get("Outputs")
    if not isinstance(outputs, dict) or REQUIRED_OUTPUT not in outputs:
        problems.append(f"{path} has no output {REQUIRED_OUTPUT}: amiforge images the instance "
                        f"it names; add Outputs: {{{REQUIRED_OUTPUT}: {{Value: !Ref "
                        "YourInstance}}")
    return problems


def _resource_type_problems(path: str, resources: dict[Any, Any]) -> list[str]:
    problems = []
    for name, resource in resources.items():
        kind = resource.get("Type") if isinstance(resource, dict) else None
        if not isinstance(kind, str):
            problems.append(f"{path}: resource {str(name)!r} has no Type; give each resource "
                            "a Type, like AWS::EC2::Instance")
        elif not RESOURCE_TYPE.fullmatch(kind):
            shown = kind if len(kind) <= 80 else kind[:77] + "..."
            problems.append(f"{path}: resource {str(name)!r} has the unknown type {shown!r}; "
                            "CloudFormation types look like AWS::EC2::Instance (or "
                            "Custom::Name for a custom resource)")
    return problems


def _iam_problems(path: str, template: dict[str, Any]) -> list[str]:
    """Build-template IAM within what the build stack's role may create."""
    problems = []
    parameters = template.get("Parameters")
    boundary_declared = isinstance(parameters, dict) and IAM_CAPABILITY_PARAMETER in parameters
    for name in iam_resources(template):
        resource = template["Resources"][name]
        kind = resource["Type"]
        properties = resource.get("Properties")
        properties = properties if isinstance(properties, dict) else {}
        if kind not in IAM_TYPES:
            problems.append(f"{path}: resource {name!r} is an {kind}; a build template may "
                            f"create only {', '.join(IAM_TYPES)} (the build stack's role "
                            "can create nothing else in IAM)")
            continue
        named = {"AWS::IAM::Role": "RoleName",
                 "AWS::IAM::InstanceProfile": "InstanceProfileName"}.get(kind)
        given = properties.get(named) if named else None
        if isinstance(given, str) and not given.startswith(IAM_NAME_PREFIX):
            problems.append(f"{path}: resource {name!r} has the {named} {given[:80]!r}; "
                            f"build-template IAM names must start with {IAM_NAME_PREFIX} "
                            f"(or leave {named} out: CloudFormation then names it after "
                            "the build stack)")
        if properties.get("Path", "/") != "/":
            problems.append(f"{path}: resource {name!r} sets a Path; build-template IAM "
                            "lives at the root path (remove Path)")
        if kind == "AWS::IAM::Role" and not _is_boundary_ref(
                properties.get("PermissionsBoundary")):
            problems.append(f"{path}: role {name!r} has no PermissionsBoundary: the build "
                            "stack may only create roles bounded by the stack's boundary; "
                            f"declare the parameter {IAM_CAPABILITY_PARAMETER} (Type: "
                            f"String) and set PermissionsBoundary: !Ref "
                            f"{IAM_CAPABILITY_PARAMETER}")
        elif kind == "AWS::IAM::Role" and not boundary_declared:
            problems.append(f"{path}: role {name!r} refers to {IAM_CAPABILITY_PARAMETER}, "
                            f"which the template does not declare; declare "
                            f"{IAM_CAPABILITY_PARAMETER} (Type: String)")
    return problems


def _is_boundary_ref(value: Any) -> bool:
    # YAML's !Ref X reads as the plain "X" (short tags are kept opaque); JSON has {"Ref": X}.
    return bool(value == IAM_CAPABILITY_PARAMETER
                or value == {"Ref": IAM_CAPABILITY_PARAMETER})
