"""``AWS::EC2::Instance`` in a stack, updated and replaced as AWS does.

moto ignores ``MetadataOptions`` (so ``HttpTokens: required`` does not hold) and
``SecurityGroupIds`` (it joins only ``SecurityGroups``, read as ids), and cannot
update an instance at all (the stack loses track of it). Here a change to a create-only
property (``ImageId``, ``SubnetId``, ``KeyName``... as the resource's schema lists them)
replaces the instance as AWS does: a new instance, tagged like the old, then the old one
terminated. Other changes apply ``MetadataOptions`` and ``Tags`` in place; the rest of an
in-place update is not modelled.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

# createOnlyProperties of AWS::EC2::Instance (its CloudFormation resource schema).
INSTANCE_CREATE_ONLY = (
    "AvailabilityZone", "CpuOptions", "ElasticGpuSpecifications",
    "ElasticInferenceAccelerators", "EnclaveOptions", "HibernationOptions",
    "HostResourceGroupArn", "ImageId", "Ipv6AddressCount", "Ipv6Addresses", "KeyName",
    "LaunchTemplate", "LicenseSpecifications", "NetworkInterfaces", "PlacementGroupName",
    "PrivateIpAddress", "SecurityGroups", "SubnetId",
)


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


def wrap_instance_create(original: Callable[..., Any]) -> Any:
    def create_from_cloudformation_json(cls: Any, /, resource_name: str,
                                        cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str, **kwargs: Any) -> Any:
        properties = cloudformation_json.get("Properties") or {}
        if properties.get("SecurityGroupIds") and not properties.get("SecurityGroups"):
            cloudformation_json = {**cloudformation_json, "Properties": {
                **properties, "SecurityGroups": properties["SecurityGroupIds"]}}
        instance = original(cls, resource_name, cloudformation_json, account_id, region_name,
                            **kwargs)
        _apply_in_place(instance, {}, {"MetadataOptions": properties.get("MetadataOptions")})
        instance.cfn_properties = copy.deepcopy(properties)
        return instance

    return classmethod(create_from_cloudformation_json)


def instance_update(cls: Any, original_resource: Any, new_resource_name: str,
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

