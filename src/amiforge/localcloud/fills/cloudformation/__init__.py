"""CloudFormation fills: stacks as AWS runs them, for amiforge's stack and its consumers'.

A consumer stack launches from the newest image through a parameter of type
``AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>`` or through ``!GetAtt`` on a custom
resource, and moves to a newer image by a stack update; amiforge's own stack has custom
resources and exports. moto departs from AWS there; each module says how:

* :mod:`.parameters` — SSM parameter types, and ``ValidateTemplate``'s parameters;
* :mod:`.resources` — updates follow resolved values; creation waits for custom resources;
* :mod:`.instances` — ``AWS::EC2::Instance`` updated in place or replaced;
* :mod:`.exports` — a stack whose export is imported is not deleted;
* :mod:`.custom_resources` — custom resources answering FAILED, Update and Delete;
* :mod:`.missing_types` — types moto's CloudFormation lacks: ``AWS::CodeBuild::Project``
  (:mod:`.codebuild`) and ``AWS::IAM::OIDCProvider`` (:mod:`.oidc_provider`);
* :mod:`.conditions` — ``!Condition NAME`` inside a condition; updates that change a
  condition; ``AWS::NoValue`` in a list;
* :mod:`.roles` — ``AWS::IAM::Role``'s managed policies, and its policies on update;
* :mod:`.lint_once` — ``ValidateTemplate`` lints a template's text once, not per call.

And the ResponseURL moto gives a custom resource names this server on 127.0.0.1 (moto
builds it from Docker's host name). Nothing here knows about amiforge.
"""

from __future__ import annotations

from amiforge.localcloud.fills import Fill
from amiforge.localcloud.fills.cloudformation import (
    conditions,
    custom_resources,
    exports,
    instances,
    lint_once,
    missing_types,
    parameters,
    resources,
    roles,
)


def _server_host() -> str:
    return "http://127.0.0.1"


_STACK = "moto.cloudformation.models:Stack"
_BACKEND = "moto.cloudformation.models:CloudFormationBackend"
_RESPONSE = "moto.cloudformation.responses:CloudFormationResponse"
_RESOURCE_MAP = "moto.cloudformation.parsing:ResourceMap"
_CUSTOM = "moto.cloudformation.custom_model:CustomModel"
_INSTANCE = "moto.ec2.models.instances:Instance"
_PARSING = "moto.cloudformation.parsing"
_ROLE = "moto.iam.models:Role"

FILLS = [
    Fill("cloudformation.response-url-on-loopback", "moto.settings", "moto_server_host",
         lambda _original: _server_host, "c7abc27ca73d"),
    # parameters
    Fill("cloudformation.ssm-parameter-shown-by-name", _STACK, "parameter_list",
         parameters.wrap_parameter_list, "89f3a7760b8c"),
    Fill("cloudformation.ssm-parameter-given-by-name", _STACK, "stack_parameters",
         lambda _original: property(parameters.given_parameters), "c1a7bd236ef4"),
    Fill("cloudformation.ssm-parameter-previous-value", _BACKEND, "_resolve_update_parameters",
         parameters.wrap_resolve_update_parameters, "02438a8e3700"),
    Fill("cloudformation.ssm-parameter-newer-value-updates", _RESPONSE,
         "_validate_different_update", parameters.wrap_validate_different_update, "8a557e2f8f3b"),
    Fill("cloudformation.ssm-parameter-missing-refused", _RESOURCE_MAP, "parse_ssm_parameter",
         parameters.wrap_parse_ssm_parameter, "154b9cabf087"),
    Fill("cloudformation.validate-template-parameters", _RESPONSE, "validate_template",
         parameters.wrap_validate_template, "911f8224c59f"),
    Fill("cloudformation.lint-each-template-once", _BACKEND, "validate_template",
         lint_once.wrap_validate_template, "150f2b09a259"),
    # resources
    Fill("cloudformation.update-follows-resolved-values", _RESOURCE_MAP, "update",
         resources.wrap_resource_map_update, "e34b0c357f3c"),
    Fill("cloudformation.create-in-dependency-order", _RESOURCE_MAP, "create",
         lambda _original: resources.resource_map_create, "0163ac783f5c"),
    Fill("cloudformation.waiting-resource-not-yet-there", _RESOURCE_MAP, "__getitem__",
         resources.wrap_getitem, "bfa3c026d08d"),
    Fill("cloudformation.complete-when-nothing-waits", _RESOURCE_MAP, "creation_complete",
         resources.wrap_creation_complete, "464471fe4983"),
    Fill("cloudformation.resume-waiting-resources", _STACK, "verify_readiness",
         resources.wrap_verify_readiness, "97df3e9d9155"),
    Fill("cloudformation.stack-resources-created-only", _STACK, "stack_resources",
         lambda _original: property(resources.stack_resources), "48081724e7f6"),
    # AWS::EC2::Instance
    Fill("cloudformation.instance-metadata-options", _INSTANCE,
         "create_from_cloudformation_json",
         lambda original: instances.wrap_instance_create(original.__func__), "09486a5b2a23"),
    Fill("cloudformation.instance-update-or-replace", _INSTANCE,
         "update_from_cloudformation_json",
         lambda _original: classmethod(instances.instance_update), "6f03508d3969"),
    # exports
    Fill("cloudformation.export-in-use-not-deleted", _RESPONSE, "delete_stack",
         exports.wrap_delete_stack, "4444140dae50"),
    # custom resources
    Fill("cloudformation.custom-resource-create", _CUSTOM, "create_from_cloudformation_json",
         custom_resources.wrap_create, "1cffb9a8f942"),
    Fill("cloudformation.custom-resource-update", _CUSTOM, "update_from_cloudformation_json",
         lambda _original: classmethod(custom_resources.update_from_cloudformation_json),
         "6f03508d3969"),
    Fill("cloudformation.custom-resource-delete", _CUSTOM, "delete",
         lambda _original: custom_resources.delete_custom_resource, None),
    Fill("cloudformation.custom-resource-physical-id", _CUSTOM, "physical_resource_id",
         lambda _original: property(custom_resources.physical_resource_id), "78755aec0fbe"),
    Fill("cloudformation.custom-resource-answers", _RESPONSE, "process_cfn_response",
         lambda _original: custom_resources.process_cfn_response, "713708bffd1f"),
    Fill("cloudformation.delete-failed-stays-listed", _BACKEND, "delete_stack",
         custom_resources.wrap_backend_delete_stack, "d0113177c342"),
    Fill("cloudformation.custom-resource-update-rollback", _STACK, "update",
         custom_resources.wrap_stack_update, "fd488c7f43d4"),
    Fill("cloudformation.custom-resources-deleted-first", _STACK, "delete",
         custom_resources.wrap_stack_delete, "bf0c199611d2"),
    # conditions
    Fill("cloudformation.condition-short-form", _PARSING, "parse_condition",
         conditions.wrap_parse_condition, "0f7792d19f9a"),
    Fill("cloudformation.update-skips-unwanted", _PARSING, "parse_and_update_resource",
         conditions.wrap_parse_and_update_resource, "2ef032cfb9ed"),
    Fill("cloudformation.no-value-leaves-lists", _PARSING, "clean_json",
         conditions.wrap_clean_json, "9fbe5dedab81"),
    # AWS::IAM::Role
    Fill("cloudformation.role-managed-policies", _ROLE, "create_from_cloudformation_json",
         lambda original: roles.wrap_role_create(original.__func__), "05f0a3ccfb31"),
    Fill("cloudformation.role-update-policies", _ROLE, "update_from_cloudformation_json",
         lambda original: roles.wrap_role_update(original.__func__), "ddb4ea55b027"),
    Fill("cloudformation.role-delete-detaches", _ROLE, "delete_from_cloudformation_json",
         lambda original: roles.wrap_role_delete(original.__func__), "d88f04fdea94"),
    # resource types moto lacks
    Fill("cloudformation.missing-resource-types", _PARSING, "resource_class_from_type",
         missing_types.wrap_resource_class_from_type, "ca766bc34c19"),
]
