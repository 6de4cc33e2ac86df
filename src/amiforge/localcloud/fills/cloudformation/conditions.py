"""``!Condition NAME`` inside a condition, as CloudFormation reads it.

A condition may name another (``HasBuilderRole: !And [!Condition HasBuilderProfile,
...]``). moto's YAML loader turns every short-form tag ``!X`` into ``{"Fn::X": ...}``, so
``!Condition NAME`` arrives as ``{"Fn::Condition": NAME}``, which moto's
``parse_condition`` does not know (it knows the long form ``{"Condition": NAME}``): the
reference evaluates to nothing, and every ``!And`` holding one is false whatever the
parameters say. Here the short form is read as the long one.
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
