"""SSM fill: ``DescribeParameters`` by data type. Nothing here knows amiforge.

AWS accepts the ``ParameterFilters`` key ``DataType`` (e.g. every parameter of data type
``aws:ec2:image``); moto refuses it as an invalid key. Here the filter is applied
(options ``Equals`` and ``BeginsWith``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from amiforge.localcloud.fills import Fill


def _describe_parameters(original: Callable[..., Any]) -> Callable[..., Any]:
    def describe_parameters(self: Any, filters: Any, parameter_filters: Any) -> Any:
        from moto.ssm.exceptions import InvalidFilterOption

        by_type = [f for f in parameter_filters or [] if f.get("Key") == "DataType"]
        rest = [f for f in parameter_filters or [] if f.get("Key") != "DataType"]
        for item in by_type:
            option = item.get("Option", "Equals")
            if option not in ("Equals", "BeginsWith"):
                raise InvalidFilterOption(
                    f"The following filter option is not valid: {option}. Valid options "
                    "include: [BeginsWith, Equals].")
        found = original(self, filters, rest)
        for item in by_type:
            values = item.get("Values") or []
            if item.get("Option", "Equals") == "BeginsWith":
                found = [p for p in found if any(p.data_type.startswith(v) for v in values)]
            else:
                found = [p for p in found if p.data_type in values]
        return found

    return describe_parameters


FILLS = [
    Fill("ssm.describe-parameters-by-data-type", "moto.ssm.models:SimpleSystemManagerBackend",
         "describe_parameters", _describe_parameters, "8a1ba47a81e3"),
]
