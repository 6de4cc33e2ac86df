"""What a build template is given: ``build.parameters``, the network, and amiforge's own values.

A build stack's parameters come from three places, and a template may declare any of them:

* amiforge's values (:data:`AMIFORGE_VALUES`): the base AMI, the recipe and build ids, the
  recipe's KMS key, the stack's builder security group and, when the stack lets build
  templates create IAM roles, the permissions boundary those roles must carry;
* the recipe's network (:data:`NETWORK`): ``build.subnet_id`` as ``SubnetId`` and
  ``build.security_group_ids`` as ``SecurityGroupIds``, only when the template declares them;
* ``build.parameters``: any other parameter of the template, by name.

:func:`recipe_problems` is what ``validate`` (and ``publish``) says about a recipe against
its template: an unknown parameter, a network setting the template cannot take, a template
parameter nobody gives a value and that has no Default. The CreateBuildStack step runs the
same check on the published recipe before creating anything, then passes
:func:`stack_parameters`. Everything here is pure and takes the template's declared
parameters as data: ``validate`` reads them from the file with the loader that keeps
CloudFormation's short tags opaque (``core/build_template.py``); the build step, whose
bundle has no YAML parser, from CloudFormation's ValidateTemplate.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from amiforge.core.model import Recipe
from amiforge.core.schema import Fields, describe

# CloudFormation's limit on a template passed inline (TemplateBody); a larger one goes
# through the artifact bucket (TemplateURL).
INLINE_TEMPLATE_MAX = 51_200
# The parameter that carries the stack's permissions boundary for build-template roles,
# and the capabilities a template with IAM resources is created with.
IAM_CAPABILITY_PARAMETER = "RolePermissionsBoundary"
IAM_CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM")

# Parameters amiforge fills in itself -> what it passes (docs/recipes.md).
AMIFORGE_VALUES = {
    "BaseImageId": "the base AMI amiforge resolved",
    "RecipeName": "the recipe's name",
    "BuildId": "the build's id",
    "KmsKeyId": "the recipe's image.kms_key_id",
    "BuilderSecurityGroupId": "the stack's no-inbound builder security group",
    IAM_CAPABILITY_PARAMETER: "the permissions boundary the stack gives build-template roles",
}
# Recipe network fields -> the template parameter that carries each.
NETWORK = {"subnet_id": "SubnetId", "security_group_ids": "SecurityGroupIds"}
NETWORK_TYPES = {"SubnetId": "AWS::EC2::Subnet::Id",
                 "SecurityGroupIds": "List<AWS::EC2::SecurityGroup::Id>"}
RESERVED = (*AMIFORGE_VALUES, *NETWORK.values())
# CloudFormation's limits: parameters per template, and a parameter value's length.
PARAMETERS_MAX = 200
VALUE_MAX = 4096
NAME = re.compile(r"[A-Za-z0-9]{1,255}")
FIELD = "build.parameters"


def parameters_section(fields: Fields, build: dict[str, Any]) -> dict[str, str]:
    """``build.parameters``: template parameter name -> value, as CloudFormation takes them
    (strings; a number or boolean is written out, a list is joined with commas)."""
    raw = build.get("parameters")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        fields.add(FIELD, f"must be a mapping of template parameter name: value, got "
                   f"{describe(raw)} (for example parameters: {{InstanceType: t3.large}})")
        return {}
    if len(raw) > PARAMETERS_MAX:
        fields.add(FIELD, f"has {len(raw)} entries; a CloudFormation template takes at most "
                   f"{PARAMETERS_MAX} parameters")
        return {}
    values: dict[str, str] = {}
    for key, value in raw.items():
        name = str(key)
        where = f"{FIELD}.{name}" if NAME.fullmatch(name) else FIELD
        if not isinstance(key, str) or not NAME.fullmatch(key):
            fields.add(where, f"{describe(key)} is not a template parameter name; names are "
                       "letters and digits, like InstanceType")
        elif key in RESERVED:
            fields.add(where, f"amiforge passes {key} itself ({_supplier(key)}); remove it "
                       "from build.parameters")
        elif (text := _value_text(value)) is None:
            fields.add(where, f"must be a string, number, boolean or list of those, got "
                       f"{describe(value)}")
        elif "\x00" in text:
            fields.add(where, "contains a NUL character; a parameter value must be text")
        elif len(text) > VALUE_MAX:
            fields.add(where, f"is {len(text)} characters long; CloudFormation takes at most "
                       f"{VALUE_MAX} per parameter value")
        else:
            values[key] = text
    return values


def _value_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, str | int | float) and
                                       not isinstance(v, bool) for v in value):
        return ",".join(str(v) for v in value)
    return None


def _supplier(key: str) -> str:
    if key in AMIFORGE_VALUES:
        return AMIFORGE_VALUES[key]
    field = next(f for f, parameter in NETWORK.items() if parameter == key)
    return f"from build.{field}"


def recipe_problems(recipe: Recipe, declared: Mapping[str, Mapping[str, Any]], *,
                    boundary: bool = True, check_values: bool = True
                    ) -> list[tuple[str, str]]:
    """(field, message) for each way the recipe and its template do not fit together.

    ``declared``: the template's parameters (name -> declaration; "Default" in it if it
    has one). ``boundary``: whether amiforge can pass RolePermissionsBoundary (validate
    cannot know the stack's setting, so it assumes it; the build step knows).
    ``check_values``: check AllowedValues too (ValidateTemplate does not list them).
    """
    if recipe.build.cloudformation is None:
        if recipe.build.parameters:
            return [(FIELD, "applies only to a build.cloudformation recipe: the values are "
                            "passed to its build template; remove build.parameters")]
        return []
    path = recipe.build.cloudformation
    if recipe.build.platform == "windows":
        return [("build.platform", WINDOWS_REFUSED)]
    problems: list[tuple[str, str]] = []
    for field, parameter in NETWORK.items():
        if getattr(recipe.build, field) and parameter not in declared:
            problems.append((f"build.{field}", (
                f"{path} declares no parameter {parameter}, so the build stack cannot take "
                f"it; declare {parameter} (Type: {NETWORK_TYPES[parameter]}) and use it "
                f"in the instance's properties, or remove build.{field}")))
    for key in sorted(set(recipe.build.parameters) - set(declared)):
        close = difflib.get_close_matches(key, list(declared), n=1, cutoff=0.6)
        hint = (f"did you mean {close[0]}?" if close else
                f"it declares {', '.join(sorted(declared)) or 'none'}")
        problems.append((f"{FIELD}.{key}", f"{path} declares no parameter {key} ({hint}); "
                         "remove it or declare it in the template"))
    given = _given(recipe, boundary=boundary)
    for key, spec in sorted(declared.items()):
        if key in given or "Default" in spec:
            if key in recipe.build.parameters and check_values:
                problems += _allowed_problems(key, spec, recipe.build.parameters[key])
            continue
        problems.append((_missing_field(key), f"{path} declares the parameter {key} with no "
                         f"Default and the recipe gives it no value: {_what_to_add(key)}"))
    return problems


WINDOWS_REFUSED = (
    "a Windows build cannot come from a build template: a Windows image must be generalised "
    "by sysprep, which shuts the instance down, and a template's cfn-signal reports success "
    "before that (amiforge would stop and image an unsysprepped instance, or cut into the "
    "template's work); build it from build.user_data with platform: windows, which amiforge "
    "ends with EC2Launch's sysprep and shutdown")


def _given(recipe: Recipe, *, boundary: bool) -> set[str]:
    given = {"BaseImageId", "RecipeName", "BuildId", "BuilderSecurityGroupId",
             "SecurityGroupIds", *recipe.build.parameters}
    if recipe.image.kms_key_id:
        given.add("KmsKeyId")
    if recipe.build.subnet_id:
        given.add("SubnetId")
    if boundary:
        given.add(IAM_CAPABILITY_PARAMETER)
    return given


def _missing_field(key: str) -> str:
    if key == "SubnetId":
        return "build.subnet_id"
    if key == "KmsKeyId":
        return "image.kms_key_id"
    return FIELD


def _what_to_add(key: str) -> str:
    if key == "SubnetId":
        return "set build.subnet_id (amiforge passes it as SubnetId), or give it a Default"
    if key == "KmsKeyId":
        return "set image.kms_key_id (amiforge passes it as KmsKeyId), or give it a Default"
    if key == IAM_CAPABILITY_PARAMETER:
        return ("deploy the stack with -p BuildTemplateIam=enabled (amiforge then passes "
                "the roles' permissions boundary in it)")
    return f"add build.parameters: {{{key}: VALUE}}, or give it a Default in the template"


def _allowed_problems(key: str, spec: Mapping[str, Any], value: str) -> list[tuple[str, str]]:
    allowed = spec.get("AllowedValues")
    if not isinstance(allowed, list) or not allowed:
        return []
    choices = [str(v) for v in allowed]
    if value in choices:
        return []
    shown = "the value given" if spec.get("NoEcho") in (True, "true", "True") else repr(value)
    return [(f"{FIELD}.{key}", f"{shown} is not one of the template's AllowedValues for "
             f"{key}: {', '.join(choices)}")]


def stack_parameters(recipe: Recipe, declared: set[str], *, base_ami: str, build_id: str,
                     builder_security_group: str | None, boundary_arn: str | None
                     ) -> dict[str, str]:
    """CreateStack's parameters: every value amiforge or the recipe has for a parameter
    the template declares (and nothing it does not declare: CloudFormation refuses those)."""
    groups = recipe.build.security_group_ids or (
        (builder_security_group,) if builder_security_group else ())
    values: dict[str, str | None] = {
        **recipe.build.parameters,
        "BaseImageId": base_ami, "RecipeName": recipe.name, "BuildId": build_id,
        "KmsKeyId": recipe.image.kms_key_id,
        "BuilderSecurityGroupId": builder_security_group,
        "SubnetId": recipe.build.subnet_id,
        "SecurityGroupIds": ",".join(groups) or None,
        IAM_CAPABILITY_PARAMETER: boundary_arn,
    }
    return {k: v for k, v in values.items() if k in declared and v is not None}
