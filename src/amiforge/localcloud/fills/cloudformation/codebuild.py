"""``AWS::CodeBuild::Project`` in a stack.

moto's CloudFormation has no CodeBuild type: it warns and skips the resource, and then
anything that names it (``!GetAtt Project.Arn`` in a rule's target, a ``!Ref`` output)
fails the whole stack. Here the type is a project in moto's own CodeBuild backend:
created with the stack, replaced on an update, deleted with the stack, its
CloudFormation properties turned into the API's shapes (``Source.BuildSpec`` becomes
``source.buildspec``...), so ``BatchGetProjects`` answers with the buildspec, source and
environment the template gave. moto runs no builds; nor does this.

:class:`CodeBuildProject` is deliberately not a subclass of moto's
``CloudFormationModel``: moto lists that class's subclasses as its supported types, and a
subclass would stay listed after the fills are removed. :mod:`.missing_types` answers the
type instead, only while the fills are installed.
"""

from __future__ import annotations

from typing import Any

from amiforge.localcloud.fills.cloudformation.arn_resource import ArnResource

RESOURCE_TYPE = "AWS::CodeBuild::Project"
# CloudFormation property -> API member, where lower-casing the first letter is not it.
_RENAMED = {"BuildSpec": "buildspec"}


def api_shape(value: Any) -> Any:
    """CloudFormation's PascalCase properties as CodeBuild's camelCase API members."""
    if isinstance(value, list):
        return [api_shape(item) for item in value]
    if isinstance(value, dict):
        return {_RENAMED.get(key, key[:1].lower() + key[1:]): api_shape(item)
                for key, item in value.items()}
    return value


def _backend(account_id: str, region_name: str) -> Any:
    from moto.codebuild.models import codebuild_backends

    return codebuild_backends[account_id][region_name]


class CodeBuildProject(ArnResource):
    """One stack's CodeBuild project, as moto's resource map handles its resources."""

    RESOURCE_TYPE = RESOURCE_TYPE
    NAME_TYPE = "Name"

    def __init__(self, name: str, arn: str, account_id: str, region_name: str) -> None:
        self.name = name
        self.arn = arn
        self.account_id = account_id
        self.region_name = region_name

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str,
                                        cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str,
                                        **_kwargs: Any) -> CodeBuildProject:
        properties = api_shape(cloudformation_json.get("Properties") or {})
        name = properties.get("name") or resource_name
        _backend(account_id, region_name).create_project(
            project_name=name, description=properties.get("description"),
            project_source=properties.get("source") or {},
            artifacts=properties.get("artifacts") or {"type": "NO_ARTIFACTS"},
            environment=properties.get("environment") or {},
            service_role=properties.get("serviceRole") or "",
            tags=properties.get("tags"), cache=properties.get("cache"),
            timeout=properties.get("timeoutInMinutes"),
            queued_timeout=properties.get("queuedTimeoutInMinutes"),
            source_version=properties.get("sourceVersion"),
            logs_config=properties.get("logsConfig"),
            vpc_config=properties.get("vpcConfig"))
        project = _backend(account_id, region_name).codebuild_projects[name]
        if properties.get("triggers"):
            # CreateWebhook's answer; moto's BatchGetProjects then shows it as AWS does.
            project.project_metadata["webhook"] = {
                "filterGroups": properties["triggers"].get("filterGroups") or []}
        return cls(name, project.arn, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: CodeBuildProject,
                                        new_resource_name: str,
                                        cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str
                                        ) -> CodeBuildProject:
        # AWS updates most properties in place; the local cloud re-creates the project
        # under its (unchanged or new) name, which reads the same through the API.
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json,
                                                   account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str,
                                        cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str) -> None:
        properties = cloudformation_json.get("Properties") or {}
        _backend(account_id, region_name).delete_project(properties.get("Name")
                                                         or resource_name)

    def delete(self, account_id: str, region_name: str) -> None:
        _backend(account_id, region_name).delete_project(self.name)
