"""``AWS::IAM::OIDCProvider`` in a stack.

moto's CloudFormation has no such type (it skips the resource, and a ``!Ref`` to it, the
provider's ARN, fails the stack), though moto's IAM has the providers themselves. Here the
type is a provider in moto's IAM, created and deleted with the stack; ``!Ref`` is its ARN,
as on AWS. An update replaces it. Like :mod:`.codebuild`'s class, this one is not a
``CloudFormationModel`` subclass (see there why).
"""

from __future__ import annotations

from typing import Any

from amiforge.localcloud.fills.cloudformation.arn_resource import ArnResource

RESOURCE_TYPE = "AWS::IAM::OIDCProvider"


def _backend(account_id: str, region_name: str) -> Any:
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    return iam_backends[account_id][get_partition(region_name)]


class OidcProvider(ArnResource):
    """One stack's OIDC provider, as moto's resource map handles its resources."""

    RESOURCE_TYPE = RESOURCE_TYPE

    def __init__(self, arn: str) -> None:
        self.arn = arn

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str,
                                        cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str,
                                        **_kwargs: Any) -> OidcProvider:
        properties = cloudformation_json.get("Properties") or {}
        provider = _backend(account_id, region_name).create_open_id_connect_provider(
            url=properties["Url"],
            thumbprint_list=list(properties.get("ThumbprintList") or []),
            client_id_list=list(properties.get("ClientIdList") or []),
            tags=list(properties.get("Tags") or []))
        return cls(provider.arn)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: OidcProvider,
                                        new_resource_name: str,
                                        cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str) -> OidcProvider:
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json,
                                                   account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str,
                                        cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str) -> None:
        _backend(account_id, region_name).delete_open_id_connect_provider(resource_name)

    def delete(self, account_id: str, region_name: str) -> None:
        _backend(account_id, region_name).delete_open_id_connect_provider(self.arn)
