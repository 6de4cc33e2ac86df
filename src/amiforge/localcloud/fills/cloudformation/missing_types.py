"""Resource types moto's CloudFormation lacks, answered while the fills are installed.

moto looks a template's ``Type`` up in ``resource_class_from_type``; for a type it does
not know it warns and skips the resource, so anything that names it fails the stack.
The wrapped lookup answers these types with the local cloud's own classes:

* ``AWS::CodeBuild::Project`` (:mod:`.codebuild`): the git trigger's project;
* ``AWS::IAM::OIDCProvider`` (:mod:`.oidc_provider`): GitHub's provider, made by
  ``examples/ci/github-oidc-publisher-role.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from amiforge.localcloud.fills.cloudformation.codebuild import CodeBuildProject
from amiforge.localcloud.fills.cloudformation.oidc_provider import OidcProvider

TYPES: dict[str, Any] = {
    CodeBuildProject.cloudformation_type(): CodeBuildProject,
    OidcProvider.cloudformation_type(): OidcProvider,
}


def wrap_resource_class_from_type(original: Callable[[str], Any]) -> Callable[[str], Any]:
    def resource_class_from_type(resource_type: str) -> Any:
        return TYPES.get(resource_type) or original(resource_type)

    return resource_class_from_type
