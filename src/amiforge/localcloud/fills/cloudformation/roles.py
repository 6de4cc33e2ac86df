"""``AWS::IAM::Role`` in a stack: its managed policies, and updates of its policies.

moto creates a stack's role with its inline ``Policies`` but ignores
``ManagedPolicyArns`` (``ListAttachedRolePolicies`` answers nothing), keeps each inline
policy as the template's mapping (``GetRolePolicy`` then answers its Python ``repr``, not
JSON), and a stack update changes only the role's description: new inline policies,
managed policies and trust policy never arrive. amiforge's roles are made of managed
policies (``PublisherPolicy`` for the git trigger's publisher, the functions' log
policies), so here creation attaches them and stores inline policies as JSON, an update
brings the role to what the template now says (inline policies put and removed, managed
policies attached and detached, the trust policy replaced), and deletion detaches the
managed policies first, as CloudFormation does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def _backend(account_id: str, region_name: str) -> Any:
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    return iam_backends[account_id][get_partition(region_name)]


def _document(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _attach(backend: Any, role: Any, arns: list[str]) -> None:
    for arn in arns:
        if arn not in role.managed_policies:
            backend.attach_role_policy(arn, role.name)


def wrap_role_create(original: Callable[..., Any]) -> Any:
    def create_from_cloudformation_json(cls: Any, /, resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str, **kwargs: Any) -> Any:
        role = original(cls, resource_name, cloudformation_json, account_id, region_name,
                        **kwargs)
        properties = cloudformation_json.get("Properties") or {}
        for policy in properties.get("Policies") or []:
            # moto keeps the template's dict and answers GetRolePolicy with its repr().
            role.put_policy(policy["PolicyName"], _document(policy["PolicyDocument"]))
        _attach(_backend(account_id, region_name), role,
                list(properties.get("ManagedPolicyArns") or []))
        return role

    return classmethod(create_from_cloudformation_json)


def wrap_role_update(original: Callable[..., Any]) -> Any:
    def update_from_cloudformation_json(cls: Any, /, original_resource: Any,
                                        new_resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str) -> Any:
        role = original(cls, original_resource, new_resource_name, cloudformation_json,
                        account_id, region_name)
        backend = _backend(account_id, region_name)
        properties = cloudformation_json.get("Properties") or {}
        if properties.get("AssumeRolePolicyDocument"):
            role.assume_role_policy_document = _document(
                properties["AssumeRolePolicyDocument"])
        wanted = {p["PolicyName"]: p["PolicyDocument"]
                  for p in properties.get("Policies") or []}
        for name in [n for n in role.policies if n not in wanted]:
            role.delete_policy(name)
        for name, document in wanted.items():
            role.put_policy(name, _document(document))
        arns = list(properties.get("ManagedPolicyArns") or [])
        for arn in [a for a in role.managed_policies if a not in arns]:
            backend.detach_role_policy(arn, role.name)
        _attach(backend, role, arns)
        return role

    return classmethod(update_from_cloudformation_json)


def wrap_role_delete(original: Callable[..., Any]) -> Any:
    def delete_from_cloudformation_json(cls: Any, /, resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str) -> None:
        backend = _backend(account_id, region_name)
        for role in [r for r in backend.roles.values() if r.name == resource_name]:
            for arn in list(role.managed_policies):
                backend.detach_role_policy(arn, role.name)
        original(cls, resource_name, cloudformation_json, account_id, region_name)

    return classmethod(delete_from_cloudformation_json)
