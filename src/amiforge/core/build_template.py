"""Checks on a CloudFormation build template (``build.cloudformation``) before it is published.

The build stack is created with the parameter ``BaseImageId`` and must output ``InstanceId``
(see docs/recipes.md): a template without them would only fail once a build had started, so
``validate`` says so instead. CloudFormation's short-form tags (``!Ref``, ``!Sub``...) are
read as plain values: only the template's shape is checked here, cfn-lint checks the rest.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from amiforge.core.yamlsafe import load_yaml

REQUIRED_PARAMETER = "BaseImageId"
REQUIRED_OUTPUT = "InstanceId"
KMS_PARAMETER = "KmsKeyId"
# CloudFormation's limit on a template passed inline (TemplateBody).
INLINE_TEMPLATE_MAX = 51_200
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


def template_problems(path: str, text: str, *, kms_key: bool = False) -> list[str]:
    """What keeps ``text`` (the template at ``path``) from being a build template.

    With ``kms_key`` (the recipe sets ``image.kms_key_id`` and shares the image), the
    template must declare ``KmsKeyId``: the build's volumes, hence the image, must be
    encrypted with that customer-managed key for the accounts to launch it.
    """
    size = len(text.encode("utf-8"))
    if size > INLINE_TEMPLATE_MAX:
        return [f"{path} is {size} bytes; CloudFormation takes at most "
                f"{INLINE_TEMPLATE_MAX:,} bytes of template inline: shorten it (move "
                "scripts out of the template into files the instance downloads)"]
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
