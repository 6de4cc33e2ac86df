"""Fills for gaps in moto 5.2.5's CloudFormation that a consumer of amiforge's images meets.

A consumer stack launches from the newest image through a parameter of type
``AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>`` or through ``!GetAtt`` on a custom
resource, and moves to a newer image by a stack update. moto departs from AWS there:

* **SSM parameter types.** moto resolves a parameter's default even when a value was
  given (failing with a 500 when the default names no parameter), fails with a 500 when
  the parameter does not exist (AWS refuses the request with a ValidationError), shows the
  resolved value as ``ParameterValue`` (AWS shows the parameter's name there and the value
  as ``ResolvedValue``), reuses the resolved value for ``UsePreviousValue`` (AWS reuses the
  name and resolves it again; moto fails with a 500 when the parameter took its default),
  and calls an update whose only change is a newer SSM value "No updates are to be
  performed" (AWS updates: the resolved value changed).
* **Updates follow resolved values.** moto decides what a stack update modifies from the
  template text and the input parameters only. AWS compares each resource's *resolved*
  properties: a resource whose ``!Ref`` of an SSM parameter now resolves to a new image, or
  whose ``!GetAtt`` of an updated resource changed, is updated too, in dependency order.
* **Creation waits for custom resources.** moto creates every resource at once, so a
  resource that uses ``!GetAtt`` of a custom resource is created before the custom
  resource's function has answered (the attribute is missing; the request fails). AWS
  creates in dependency order: here a resource that refers to (or ``DependsOn``) a custom
  resource still waiting for its answer is created when that answer arrives.
* **AWS::EC2::Instance.** moto ignores ``MetadataOptions`` (so ``HttpTokens: required``
  does not hold) and cannot update an instance at all (the stack loses track of it). Here
  a change to a create-only property (``ImageId``, ``SubnetId``, ``KeyName``... as the
  resource's schema lists them) replaces the instance as AWS does: a new instance, tagged
  like the old, then the old one terminated. Other changes apply ``MetadataOptions`` and
  ``Tags`` in place; the rest of an in-place update is not modelled.
* **Exports in use.** moto deletes a stack whose export another stack imports
  (``Fn::ImportValue``), and the importer is left pointing at nothing. AWS refuses: the
  stack ends ``DELETE_FAILED`` with "Export X cannot be deleted as it is in use by Y",
  and keeps its resources and exports.

Nothing here knows about amiforge. Installed by :class:`~amiforge.localcloud.LocalCloud`
for as long as it runs; :func:`uninstall` puts moto back as it was.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable
from typing import Any

SSM_TYPE_PREFIX = "AWS::SSM::Parameter::"
# createOnlyProperties of AWS::EC2::Instance (its CloudFormation resource schema).
INSTANCE_CREATE_ONLY = (
    "AvailabilityZone", "CpuOptions", "ElasticGpuSpecifications",
    "ElasticInferenceAccelerators", "EnclaveOptions", "HibernationOptions",
    "HostResourceGroupArn", "ImageId", "Ipv6AddressCount", "Ipv6Addresses", "KeyName",
    "LaunchTemplate", "LicenseSpecifications", "NetworkInterfaces", "PlacementGroupName",
    "PrivateIpAddress", "SecurityGroups", "SubnetId",
)
_MISSING = object()
_UNKNOWN = object()  # a resource whose properties could not be resolved
_undo: list[Callable[[], None]] = []
# Creation and the custom resources' answers (on server threads) take turns on a stack.
_CREATE_LOCK = threading.RLock()


def _patch(owner: Any, name: str, value: Any) -> None:
    original = owner.__dict__.get(name, _MISSING)
    setattr(owner, name, value)
    if original is _MISSING:
        _undo.append(lambda: delattr(owner, name))
    else:
        _undo.append(lambda: setattr(owner, name, original))


# -- SSM parameter types --------------------------------------------------------------------

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


def _wrap_parameter_list(original: property) -> property:
    def parameter_list(self: Any) -> list[dict[str, Any]]:
        listed = original.fget(self)  # type: ignore[misc]
        names = ssm_parameters(self.resource_map)
        for entry in listed:
            if entry["ParameterKey"] in names:
                entry["ResolvedValue"] = _shown_value(entry["ParameterValue"])
                entry["ParameterValue"] = names[entry["ParameterKey"]][0]
        return listed

    return property(parameter_list)


def _wrap_parse_ssm_parameter(original: Callable[..., Any]) -> Callable[..., Any]:
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


def _wrap_validate_different_update(original: Callable[..., None]) -> Callable[..., None]:
    def validate(self: Any, incoming_params: Any, stack_body: str, old_stack: Any) -> None:
        if _ssm_values_changed(old_stack):
            return  # a newer SSM value is an update, with or without other changes
        original(self, incoming_params, stack_body, old_stack)

    return validate


def _wrap_resolve_update_parameters(original: Callable[..., dict[str, Any]]) -> Callable[..., Any]:
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


# -- updates follow resolved properties -------------------------------------------------------

def references(node: Any) -> set[str]:
    """Logical ids a piece of template refers to (Ref, Fn::GetAtt, Fn::Sub)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) and value else str(value)
                found.add(str(target).split(".")[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) and value else value
                if isinstance(text, str):
                    found.update(m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text))
                found |= references(value)
            else:
                found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def dependency_order(resources: dict[str, Any]) -> list[str]:
    """Logical ids, each after every resource it refers to or DependsOn."""
    order: list[str] = []
    placed: set[str] = set()

    def place(name: str, path: tuple[str, ...]) -> None:
        if name in placed or name in path:
            return
        for dependency in sorted(_dependencies(resources, name)):
            place(dependency, (*path, name))
        placed.add(name)
        order.append(name)

    for name in resources:
        place(name, ())
    return order


def _resolved(resource_map: Any, body: dict[str, Any]) -> Any:
    from moto.cloudformation.parsing import clean_json

    try:
        condition = body.get("Condition")
        if condition and not resource_map.lazy_condition_map[condition]:
            return _UNKNOWN
        return clean_json(copy.deepcopy(body.get("Properties") or {}), resource_map)
    except Exception:
        return _UNKNOWN


def _wrap_resource_map_update(original: Callable[..., None]) -> Callable[..., None]:
    def update(self: Any, template: dict[str, Any],
               parameters: dict[str, Any] | None = None) -> None:
        from moto.cloudformation.parsing import parse_and_update_resource

        before = {name: _resolved(self, body) for name, body in self._resource_json_map.items()}
        diff = self.build_resource_diff(template, parameters)
        handled = set(diff["Add"]) | set(diff["Modify"])
        original(self, template, parameters)
        if any(getattr(model, "update_failure", None)
               for model in self._parsed_resources.values()):
            return  # a custom resource refused the update: the stack is rolling back
        for name in dependency_order(self._resource_json_map):
            if name in handled or before.get(name, _UNKNOWN) is _UNKNOWN or \
                    self._parsed_resources.get(name) is None:
                continue
            body = self._resource_json_map[name]
            after = _resolved(self, body)
            if after is _UNKNOWN or after == before[name]:
                continue
            changed = parse_and_update_resource(name, body, self, account_id=self._account_id,
                                                region_name=self._region_name)
            if changed is not None:
                self._parsed_resources[name] = changed

    return update


# -- creation waits for custom resources -------------------------------------------------------

def _dependencies(resources: dict[str, Any], name: str) -> set[str]:
    body = resources[name] or {}
    declared = body.get("DependsOn") or []
    declared = [declared] if isinstance(declared, str) else list(declared)
    return (references(body) | set(declared)) & set(resources) - {name}


def _blocked(resource_map: Any, name: str) -> bool:
    """Does ``name`` refer to a custom resource (or a resource) still waiting?"""
    from moto.cloudformation.custom_model import CustomModel

    for dependency in _dependencies(resource_map._resource_json_map, name):
        if dependency in resource_map._waiting:
            return True
        model = resource_map._parsed_resources.get(dependency)
        if isinstance(model, CustomModel) and not model.is_created():
            return True
    return False


def _create_one(resource_map: Any, name: str) -> bool:
    """Create one resource as moto's ResourceMap.create does; is it ready?"""
    from moto.ec2 import models as ec2_models
    from moto.ec2.models.core import TaggedEC2Resource

    model = resource_map[name]
    if isinstance(model, TaggedEC2Resource):
        resource_map.tags["aws:cloudformation:logical-id"] = name
        backend = ec2_models.ec2_backends[resource_map._account_id][resource_map._region_name]
        backend.create_tags([model.physical_resource_id], resource_map.tags)
    return not (model and not model.is_created())


def _resource_map_create(self: Any, template: dict[str, Any]) -> bool:
    with _CREATE_LOCK:
        self._template = template
        self._resource_json_map = template["Resources"]
        self.tags.update({"aws:cloudformation:stack-name": self["AWS::StackName"],
                          "aws:cloudformation:stack-id": self["AWS::StackId"]})
        self._waiting = []
        ready = True
        for name in dependency_order(self._resource_json_map):
            if _blocked(self, name):
                self._waiting.append(name)
            else:
                ready = _create_one(self, name) and ready
        return ready and not self._waiting


def _resume(resource_map: Any) -> None:
    """Create the waiting resources that nothing blocks any more (dependency order)."""
    pending, resource_map._waiting = list(getattr(resource_map, "_waiting", [])), []
    for name in pending:
        if _blocked(resource_map, name):
            resource_map._waiting.append(name)
        else:
            _create_one(resource_map, name)


def _wrap_getitem(original: Callable[..., Any]) -> Callable[..., Any]:
    def getitem(self: Any, key: str) -> Any:
        if key in getattr(self, "_waiting", ()):
            return None  # not created yet: it waits for a custom resource's answer
        return original(self, key)

    return getitem


def _wrap_creation_complete(original: Callable[..., bool]) -> Callable[..., bool]:
    def creation_complete(self: Any) -> bool:
        return not getattr(self, "_waiting", None) and original(self)

    return creation_complete


def _wrap_verify_readiness(original: Callable[..., None]) -> Callable[..., None]:
    def verify_readiness(self: Any) -> None:
        with _CREATE_LOCK:
            try:
                _resume(self.resource_map)
            except Exception as err:  # as AWS: the resource fails, the stack rolls back
                self.resource_map._waiting = []
                reason = f"{type(err).__name__}: {err}"
                self._add_stack_event("ROLLBACK_IN_PROGRESS", resource_status_reason=reason)
                self.status = "ROLLBACK_COMPLETE"
                self.stack_status_reason = reason
                self._add_stack_event("ROLLBACK_COMPLETE")
                return
            original(self)

    return verify_readiness


def _stack_resources(self: Any) -> list[Any]:
    return [model for model in self.resource_map.values() if model is not None]


# -- AWS::EC2::Instance ------------------------------------------------------------------------

def _apply_in_place(instance: Any, previous: dict[str, Any], properties: dict[str, Any]) -> None:
    from moto.ec2.models.instances import MetadataOptions

    if properties.get("MetadataOptions"):
        instance.metadata_options = MetadataOptions(properties["MetadataOptions"])
    old_tags = {t["Key"]: t["Value"] for t in previous.get("Tags") or []}
    new_tags = {t["Key"]: t["Value"] for t in properties.get("Tags") or []}
    removed = {key: None for key in old_tags if key not in new_tags}
    if removed:
        instance.ec2_backend.delete_tags([instance.id], removed)
    if new_tags:
        instance.ec2_backend.create_tags([instance.id], new_tags)


def _wrap_instance_create(original: Callable[..., Any]) -> classmethod:
    def create_from_cloudformation_json(cls: Any, resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str, **kwargs: Any) -> Any:
        instance = original(cls, resource_name, cloudformation_json, account_id, region_name,
                            **kwargs)
        properties = cloudformation_json.get("Properties") or {}
        _apply_in_place(instance, {}, {"MetadataOptions": properties.get("MetadataOptions")})
        instance.cfn_properties = copy.deepcopy(properties)
        return instance

    return classmethod(create_from_cloudformation_json)


def _instance_update(cls: Any, original_resource: Any, new_resource_name: str,
                     cloudformation_json: dict[str, Any], account_id: str,
                     region_name: str) -> Any:
    properties = cloudformation_json.get("Properties") or {}
    previous = getattr(original_resource, "cfn_properties", None) or {}
    if all(previous.get(key) == properties.get(key) for key in INSTANCE_CREATE_ONLY):
        _apply_in_place(original_resource, previous, properties)
        original_resource.cfn_properties = copy.deepcopy(properties)
        return original_resource
    replacement = cls.create_from_cloudformation_json(new_resource_name, cloudformation_json,
                                                      account_id, region_name)
    stack_tags = {t["key"]: t["value"] for t in original_resource.get_tags()
                  if t["key"].startswith("aws:cloudformation:")}
    if stack_tags:
        replacement.ec2_backend.create_tags([replacement.id], stack_tags)
    original_resource.ec2_backend.terminate_instances([original_resource.id])
    return replacement


# -- exports in use --------------------------------------------------------------------------

def _imports_of(stack: Any) -> set[str]:
    """Export names ``stack``'s template imports, resolved with its own parameters."""
    from moto.cloudformation.parsing import clean_json

    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "Fn::ImportValue" in node:
                try:
                    name = clean_json(node["Fn::ImportValue"], stack.resource_map)
                except Exception:  # unresolvable here: the import is not ours to judge
                    name = None
                if isinstance(name, str):
                    found.add(name)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(getattr(stack, "template_dict", {}) or {})
    return found


def _importers(backend: Any, stack: Any) -> dict[str, list[str]]:
    """{export name: [stacks importing it]} for ``stack``'s exports."""
    exported = {export.name for export in stack.exports}
    users: dict[str, list[str]] = {}
    for other in list(backend.stacks.values()):
        if other is stack or other.status.startswith("DELETE_COMPLETE"):
            continue
        for name in _imports_of(other) & exported:
            users.setdefault(name, []).append(other.name)
    return users


def _wrap_delete_stack(original: Callable[..., Any]) -> Callable[..., Any]:
    """DeleteStack at the request (CloudFormationResponse): the backend's delete_stack is
    cfn_custom's to wrap, and a stack whose export is imported must not get that far."""
    def delete_stack(self: Any) -> Any:
        backend = self.cloudformation_backend
        name_or_stack_id = self._get_param("StackName")
        for stack in [s for s in backend.stacks.values()
                      if name_or_stack_id in (s.stack_id, s.name)]:
            users = _importers(backend, stack)
            if users:
                name, importers = sorted(users.items())[0]
                reason = (f"Export {name} cannot be deleted as it is in use by "
                          f"{', '.join(sorted(importers))}")
                stack._add_stack_event("DELETE_IN_PROGRESS",
                                       resource_status_reason="User Initiated")
                stack._add_stack_event("DELETE_FAILED", resource_status_reason=reason)
                stack.status = "DELETE_FAILED"
                stack.status_reason = reason
                return _empty_result()
        return original(self)
    return delete_stack


def _empty_result() -> Any:
    from moto.core.responses import EmptyResult

    return EmptyResult()


# -- install ---------------------------------------------------------------------------------

def install() -> None:
    if _undo:
        return
    from moto.cloudformation.models import CloudFormationBackend, Stack
    from moto.cloudformation.parsing import ResourceMap
    from moto.cloudformation.responses import CloudFormationResponse
    from moto.ec2.models.instances import Instance

    _patch(Stack, "parameter_list", _wrap_parameter_list(Stack.__dict__["parameter_list"]))
    _patch(Stack, "stack_parameters", property(given_parameters))
    _patch(CloudFormationBackend, "_resolve_update_parameters",
           _wrap_resolve_update_parameters(CloudFormationBackend._resolve_update_parameters))
    _patch(CloudFormationResponse, "_validate_different_update",
           _wrap_validate_different_update(CloudFormationResponse._validate_different_update))
    _patch(ResourceMap, "parse_ssm_parameter",
           _wrap_parse_ssm_parameter(ResourceMap.parse_ssm_parameter))
    _patch(ResourceMap, "update", _wrap_resource_map_update(ResourceMap.update))
    _patch(ResourceMap, "create", _resource_map_create)
    _patch(ResourceMap, "__getitem__", _wrap_getitem(ResourceMap.__getitem__))
    _patch(ResourceMap, "creation_complete",
           _wrap_creation_complete(ResourceMap.creation_complete))
    _patch(Stack, "verify_readiness", _wrap_verify_readiness(Stack.verify_readiness))
    _patch(Stack, "stack_resources", property(_stack_resources))
    _patch(Instance, "create_from_cloudformation_json",
           _wrap_instance_create(Instance.__dict__["create_from_cloudformation_json"].__func__))
    _patch(Instance, "update_from_cloudformation_json", classmethod(_instance_update))
    _patch(CloudFormationResponse, "delete_stack",
           _wrap_delete_stack(CloudFormationResponse.delete_stack))


def uninstall() -> None:
    while _undo:
        _undo.pop()()
