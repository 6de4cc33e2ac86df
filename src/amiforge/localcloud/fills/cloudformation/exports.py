"""Exports in use: a stack whose export another stack imports is not deleted.

moto deletes it, and the importer is left pointing at nothing. AWS refuses: the stack
ends ``DELETE_FAILED`` with "Export X cannot be deleted as it is in use by Y", and keeps
its resources and exports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


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


def wrap_delete_stack(original: Callable[..., Any]) -> Callable[..., Any]:
    """DeleteStack at the request (CloudFormationResponse): the backend's delete_stack is
    the custom-resource fill's to wrap, and a stack whose export is imported must not get that far."""
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

