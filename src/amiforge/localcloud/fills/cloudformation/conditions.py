"""``!Condition NAME`` inside a condition, as CloudFormation reads it.

A condition may name another (``HasBuilderRole: !And [!Condition HasBuilderProfile,
...]``). moto's YAML loader turns every short-form tag ``!X`` into ``{"Fn::X": ...}``, so
``!Condition NAME`` arrives as ``{"Fn::Condition": NAME}``, which moto's
``parse_condition`` does not know (it knows the long form ``{"Condition": NAME}``): the
reference evaluates to nothing, and every ``!And`` holding one is false whatever the
parameters say. Here the short form is read as the long one.

A stack update whose parameters change a condition: moto updates a resource whose
``Condition`` is now false as if it were wanted (resolving its properties fails when they
name a resource that does not exist, and the update with them), keeps it afterwards, and
creates a resource whose condition turned true only if the update happens to modify it.
AWS deletes the first and creates the second. Here
:func:`wrap_parse_and_update_resource` leaves a resource whose condition is false alone,
and :func:`follow_conditions`, after the update, deletes those that exist (dependants
first) and creates those now wanted that do not (dependencies first).

``!Ref AWS::NoValue`` in a list (``- !If [Cond, {...}, !Ref AWS::NoValue]``, a statement
of a policy present only under a condition): AWS drops the element; moto keeps a null
there. A role's inline policy is not checked, but a managed policy's document is, and
IAM refuses it ("Syntax errors in policy"). Here :func:`wrap_clean_json` drops it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _long_form(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"Fn::Condition"}:
        return {"Condition": value["Fn::Condition"]}
    return value


def wrap_parse_condition(original: Callable[..., bool]) -> Callable[..., bool]:
    def parse_condition(condition: Any, resources_map: Any, condition_map: Any) -> bool:
        if isinstance(condition, dict) and set(condition) == {"Fn::Condition"}:
            return bool(condition_map[condition["Fn::Condition"]])
        if isinstance(condition, dict) and len(condition) == 1:
            operator, values = next(iter(condition.items()))
            if isinstance(values, list):
                condition = {operator: [_long_form(v) for v in values]}
        return original(condition, resources_map, condition_map)

    return parse_condition


def _wanted(resource_map: Any, body: dict[str, Any] | None) -> bool:
    condition = (body or {}).get("Condition")
    return not condition or bool(resource_map.lazy_condition_map[condition])


def wrap_parse_and_update_resource(original: Callable[..., Any]) -> Callable[..., Any]:
    def parse_and_update_resource(logical_id: str, resource_json: dict[str, Any],
                                  resources_map: Any, account_id: str,
                                  region_name: str) -> Any:
        if not _wanted(resources_map, resource_json):
            return resources_map._parsed_resources.get(logical_id)  # follow_conditions
        return original(logical_id, resource_json, resources_map, account_id, region_name)

    return parse_and_update_resource


def follow_conditions(resource_map: Any, order: list[str]) -> None:
    """After an update: delete what its conditions turned off, create what they turned on
    (``order``: logical ids, each after what it refers to)."""
    bodies = resource_map._resource_json_map
    parsed = resource_map._parsed_resources
    for name in reversed(order):
        if not _wanted(resource_map, bodies[name]) and parsed.get(name) is not None:
            resource_map._delete_resource(parsed[name], bodies[name])
            parsed.pop(name)
    for name in order:
        if _wanted(resource_map, bodies[name]) and bodies[name].get("Condition") \
                and parsed.get(name) is None:
            _ = resource_map[name]  # moto's ResourceMap creates a resource on first access


def wrap_clean_json(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ``clean_json`` (it calls itself by its module's name, so nested lists are
    cleaned here too), with the elements that resolved to AWS::NoValue left out of lists."""
    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        cleaned = original(resource_json, resources_map)
        if isinstance(resource_json, list) and isinstance(cleaned, list):
            return [value for value in cleaned if value is not None]
        return cleaned

    return clean_json
