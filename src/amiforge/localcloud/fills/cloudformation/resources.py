"""CloudFormation resources created and updated in dependency order, as AWS does.

* **Updates follow resolved values.** moto decides what a stack update modifies from the
  template text and the input parameters only. AWS compares each resource's *resolved*
  properties: a resource whose ``!Ref`` of an SSM parameter now resolves to a new image, or
  whose ``!GetAtt`` of an updated resource changed, is updated too, in dependency order.
* **Creation waits for custom resources.** moto creates every resource at once, so a
  resource that uses ``!GetAtt`` of a custom resource is created before the custom
  resource's function has answered (the attribute is missing; the request fails). AWS
  creates in dependency order: here a resource that refers to (or ``DependsOn``) a custom
  resource still waiting for its answer is created when that answer arrives.
  ``ResourceMap.create`` is replaced whole: its loop is what changes.
* **Updates follow conditions** (:func:`.conditions.follow_conditions`): what an update's
  parameters turn off is deleted, what they turn on is created.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable
from typing import Any

from amiforge.localcloud.fills.cloudformation.conditions import follow_conditions

_UNKNOWN = object()  # a resource whose properties could not be resolved
# Creation and the custom resources' answers (on server threads) take turns on a stack.
_CREATE_LOCK = threading.RLock()


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


def wrap_resource_map_update(original: Callable[..., None]) -> Callable[..., None]:
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
        follow_conditions(self, dependency_order(self._resource_json_map))
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

    model: Any = resource_map[name]
    if isinstance(model, TaggedEC2Resource):
        physical_id: Any = getattr(model, "physical_resource_id", None)  # each model's own
        resource_map.tags["aws:cloudformation:logical-id"] = name
        backend = ec2_models.ec2_backends[resource_map._account_id][resource_map._region_name]
        backend.create_tags([physical_id], resource_map.tags)
    return not (model and not model.is_created())


def resource_map_create(self: Any, template: dict[str, Any]) -> bool:
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


def wrap_getitem(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto creates a resource the first time it is looked up (``ResourceMap.__getitem__``),
    and two threads looking it up at once (creation resuming on a custom resource's answer,
    DescribeStacks reading the outputs) would both create it: two instances, the stack's
    output naming one and its resource the other. A resource not created yet is looked up
    under the creation lock; once created, without it."""

    def getitem(self: Any, key: str) -> Any:
        if key in getattr(self, "_waiting", ()):
            return None  # not created yet: it waits for a custom resource's answer
        parsed = getattr(self, "_parsed_resources", None)
        if parsed is not None and key in parsed:
            return parsed[key]
        with _CREATE_LOCK:
            if key in getattr(self, "_waiting", ()):
                return None
            return original(self, key)

    return getitem


def wrap_creation_complete(original: Callable[..., bool]) -> Callable[..., bool]:
    def creation_complete(self: Any) -> bool:
        return not getattr(self, "_waiting", None) and original(self)

    return creation_complete


def wrap_verify_readiness(original: Callable[..., None]) -> Callable[..., None]:
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


def stack_resources(self: Any) -> list[Any]:
    return [model for model in self.resource_map.values() if model is not None]

