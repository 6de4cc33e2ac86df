"""CloudFormation parameters as AWS reads them: SSM parameter types, and ValidateTemplate.

* **SSM parameter types.** moto resolves a parameter's default even when a value was
  given (failing with a 500 when the default names no parameter), fails with a 500 when
  the parameter does not exist (AWS refuses the request with a ValidationError), shows the
  resolved value as ``ParameterValue`` (AWS shows the parameter's name there and the value
  as ``ResolvedValue``), reuses the resolved value for ``UsePreviousValue`` (AWS reuses the
  name and resolves it again; moto fails with a 500 when the parameter took its default),
  and calls an update whose only change is a newer SSM value "No updates are to be
  performed" (AWS updates: the resolved value changed).
* ``ValidateTemplate`` answers ``Parameters: []`` whatever the template declares; AWS
  lists each declared parameter (key, default if it has one, description, NoEcho), and
  the capabilities IAM resources need; and it takes any size of TemplateBody, where AWS
  refuses one over 51,200 bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SSM_TYPE_PREFIX = "AWS::SSM::Parameter::"


def ssm_parameters(resource_map: Any) -> dict[str, tuple[str, str]]:
    """The stack's SSM-typed parameters: key -> (the SSM parameter's name, the type)."""
    slots = (resource_map._template or {}).get("Parameters") or {}
    found = {}
    for key, slot in slots.items():
        kind = str(slot.get("Type", ""))
        if not kind.startswith(SSM_TYPE_PREFIX):
            continue
        name = resource_map.input_parameters.get(key, slot.get("Default"))
        if name is not None:
            found[key] = (str(name), kind)
    return found


def given_parameters(stack: Any) -> dict[str, Any]:
    """Parameter values as the user gave them: SSM-typed ones by name, not by value."""
    values = dict(stack.resource_map.resolved_parameters)
    values.update({key: name for key, (name, _) in ssm_parameters(stack.resource_map).items()})
    return values


def _shown_value(value: Any) -> Any:
    return ",".join(map(str, value)) if isinstance(value, list) else value


def wrap_parameter_list(original: property) -> property:
    def parameter_list(self: Any) -> list[dict[str, Any]]:
        assert original.fget is not None
        listed: list[dict[str, Any]] = original.fget(self)
        names = ssm_parameters(self.resource_map)
        for entry in listed:
            if entry["ParameterKey"] in names:
                entry["ResolvedValue"] = _shown_value(entry["ParameterValue"])
                entry["ParameterValue"] = names[entry["ParameterKey"]][0]
        return listed

    return property(parameter_list)


def wrap_parse_ssm_parameter(original: Callable[..., Any]) -> Callable[..., Any]:
    def parse_ssm_parameter(self: Any, value: str, value_type: str) -> Any:
        from moto.cloudformation.exceptions import ValidationError
        from moto.ssm.models import ssm_backends

        if ssm_backends[self._account_id][self._region_name].get_parameter(value) is not None:
            return original(self, value, value_type)
        # moto resolves every default first; a default overridden by a given value is
        # never used on AWS, so it need not exist.
        slots = (self._template or {}).get("Parameters") or {}
        if any(slot.get("Default") == value and key in self.input_parameters
               and self.input_parameters[key] != value for key, slot in slots.items()):
            return None
        raise ValidationError(message=f"Unable to fetch parameters [{value}] from parameter "
                                      "store for this account.")

    return parse_ssm_parameter


def _ssm_values_changed(stack: Any) -> bool:
    """Does any SSM-typed parameter now resolve to something else than the stack used?"""
    resource_map = stack.resource_map
    for key, (name, kind) in ssm_parameters(resource_map).items():
        try:
            current = resource_map.parse_ssm_parameter(name, kind)
        except Exception:
            return True  # let the update itself report the missing parameter
        if current != resource_map.resolved_parameters.get(key):
            return True
    return False


def wrap_validate_different_update(original: Callable[..., None]) -> Callable[..., None]:
    def validate(self: Any, incoming_params: Any, stack_body: str, old_stack: Any) -> None:
        if _ssm_values_changed(old_stack):
            return  # a newer SSM value is an update, with or without other changes
        original(self, incoming_params, stack_body, old_stack)

    return validate


def wrap_resolve_update_parameters(original: Callable[..., dict[str, Any]]) -> Callable[..., Any]:
    def resolve(self: Any, instance: Any, incoming_params: list[dict[str, Any]]) -> Any:
        from moto.cloudformation.exceptions import ValidationError
        from moto.cloudformation.models import Stack

        if not isinstance(instance, Stack):
            return original(self, instance=instance, incoming_params=incoming_params)
        previous = given_parameters(instance)
        parameters = {}
        for parameter in incoming_params:
            key = parameter["ParameterKey"]
            if "ParameterValue" in parameter:
                parameters[key] = parameter["ParameterValue"]
            elif parameter.get("UsePreviousValue", False):
                if key not in previous:
                    raise ValidationError(message=(
                        f"Invalid input for parameter key {key}. Cannot specify "
                        "usePreviousValue as true for a parameter key not in the "
                        "previous template"))
                value = previous[key]
                parameters[key] = _shown_value(value)
        return parameters

    return resolve



# AWS refuses a TemplateBody over this many bytes (a larger template goes by TemplateURL).
TEMPLATE_BODY_MAX = 51_200


def wrap_validate_template(original: Callable[..., Any]) -> Callable[..., Any]:
    def validate_template(self: Any) -> Any:
        from moto.cloudformation.exceptions import ValidationError

        body = self._get_param("TemplateBody")
        if body is not None and len(body.encode("utf-8")) > TEMPLATE_BODY_MAX:
            raise ValidationError(message=(
                "1 validation error detected: Value at 'templateBody' failed to satisfy "
                f"constraint: Member must have length less than or equal to {TEMPLATE_BODY_MAX}"))
        result = original(self)
        if self._get_param("TemplateURL"):
            body = self._get_stack_from_s3_url(self._get_param("TemplateURL"))
        template = _parse_template(body) or {}
        declared = template.get("Parameters") or {}
        # AWS lists DefaultValue only for a parameter that has a Default.
        result.result["Parameters"] = [
            {"ParameterKey": key, "NoEcho": bool(spec.get("NoEcho", False)),
             "Description": spec.get("Description", ""),
             **({"DefaultValue": str(spec["Default"])} if "Default" in spec else {})}
            for key, spec in declared.items() if isinstance(spec, dict)]
        capabilities = _capabilities(template)
        if capabilities:
            result.result["Capabilities"] = capabilities
            result.result["CapabilitiesReason"] = ("The following resource(s) require "
                                                   "capabilities: [AWS::IAM::Role]")
        return result

    return validate_template


def _capabilities(template: dict[str, Any]) -> list[str]:
    """What AWS's ValidateTemplate says CreateStack needs: CAPABILITY_IAM for IAM resources,
    CAPABILITY_NAMED_IAM when one of them is given a name."""
    resources = template.get("Resources")
    iam = [r for r in (resources.values() if isinstance(resources, dict) else [])
           if isinstance(r, dict) and str(r.get("Type", "")).startswith("AWS::IAM::")]
    if not iam:
        return []
    named = any(isinstance(r.get("Properties"), dict) and
                {"RoleName", "InstanceProfileName", "UserName", "GroupName",
                 "ManagedPolicyName"} & set(r["Properties"]) for r in iam)
    return ["CAPABILITY_NAMED_IAM"] if named else ["CAPABILITY_IAM"]


def _parse_template(body: str) -> dict[str, Any] | None:
    """A template as data: JSON, or YAML with CloudFormation's short-form tags kept opaque."""
    import json

    import yaml
    from moto.cloudformation.utils import yaml_tag_constructor

    try:
        document: Any = json.loads(body)
    except ValueError:
        pass
    else:
        return document if isinstance(document, dict) else None

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", yaml_tag_constructor)
    try:
        parsed = yaml.load(body, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        return None
    return parsed if isinstance(parsed, dict) else None
