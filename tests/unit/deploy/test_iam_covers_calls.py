"""Every AWS call a Lambda function's code makes is allowed by that function's own role.

The local cloud (moto) does not enforce IAM, so a role missing a permission passes every
e2e test and fails on real AWS. This test closes that gap statically, in two halves:

1. :data:`CALLS` is a hand-written table, derived by reading the code: for each
   ``AWS::Lambda::Function`` of the template, the API operations its code calls (DynamoDB
   operations also name their table, or index). :data:`IMPLIED` adds the IAM actions AWS
   checks *besides* the operation's own (RunInstances with TagSpecifications also needs
   ec2:CreateTags, ...) and :func:`platform_actions` what Lambda itself does with the role
   (logs, the SQS event source mapping). :func:`test_every_call_is_allowed_by_the_role`
   evaluates each against the role's inline policies and managed policies.
2. The table cannot silently drift from the code: :class:`CallGraph` follows the code with
   ``ast`` from the function's ``Handler`` (function-level call graph across amiforge's
   modules, with a small type inference for ``env.catalog``, ``WaitingList(...)``,
   ``self``...), collecting every boto3 client method called (``ec2.describe_images``,
   ``get_paginator("describe_instances")``, service from ``env.client("ec2")`` or the
   variable's name). :func:`test_the_table_matches_the_code` asserts the operations found
   equal the table's, both ways, apart from :data:`REACHABLE_NOT_CALLED`.

Limits of the automatic half (the hand-written table is the backstop): calls through
plain callables passed as arguments are followed only where the callable is *named*
(a reference to an amiforge function counts as a call of it); a method called on a value
whose type is not inferred is followed by name among the classes of the imported modules,
except for names of builtin container/str methods (``get``, ``update``, ``add``...).
Resources are checked only for DynamoDB (table / index); for other services any Allow
statement naming the action counts, whatever its Resource and Condition. The
informational list of granted-but-never-called actions is printed by
:func:`test_report_granted_but_never_called` (run with ``-s`` to see it).
"""

from __future__ import annotations

import ast
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore
import botocore.session
import pytest
from cfnlint.decode.cfn_yaml import loads

import amiforge
from amiforge.deploy.stack import template_text
from amiforge.handlers import pipeline

# --------------------------------------------------------------------------- the table
# Logical id of the function -> what its code calls. "service:Operation" is the IAM action
# of the API operation; DynamoDB entries add " on <Table>" or " on <Table>/index/<name>"
# (a Query on an index needs dynamodb:Query on the index's ARN, not the table's).
# Derived by reading handlers/pipeline.py -> steps/*.py -> aws/*.py.
CALLS: dict[str, set[str]] = {
    # steps.resolve.resolve: store.version/current, resolve_one -> base.resolve_bases
    # (ssm.get_parameters, ec2.newest_images), ec2.describe_image, catalog.start.
    "ResolveFunction": {
        "dynamodb:GetItem on RecipesTable", "dynamodb:PutItem on CatalogTable",
        "ssm:GetParameters", "ec2:DescribeImages",
        # resolve_and_launch: then steps.launch.launch, as LaunchFunction below.
        "ec2:DescribeInstances", "dynamodb:GetItem on CatalogTable",
        "dynamodb:UpdateItem on CatalogTable", "ec2:RunInstances", "s3:HeadObject",
        "s3:PutObject",
    },
    # steps.launch.launch: instances_tagged, load_recipe, Pacer (hooked on RunInstances:
    # GetItem + conditional UpdateItem of the #limits item), run_builder, catalog.update.
    "LaunchFunction": {
        "ec2:DescribeInstances", "dynamodb:GetItem on RecipesTable",
        "dynamodb:GetItem on CatalogTable", "dynamodb:UpdateItem on CatalogTable",
        "ec2:RunInstances",
        # stage_assets (build.files): AssetBucket.holds and put_text.
        "s3:HeadObject", "s3:PutObject",
    },
    # steps.build_stack.create_build_stack: describe, load_recipe, put_object (a template
    # over the inline limit), declared_parameters (ValidateTemplate), security_group_tags
    # (the recipe's groups), Pacer.take, create.
    "CreateBuildStackFunction": {
        "cloudformation:DescribeStacks", "dynamodb:GetItem on RecipesTable",
        "s3:PutObject", "cloudformation:ValidateTemplate", "ec2:DescribeSecurityGroups",
        "dynamodb:GetItem on CatalogTable", "dynamodb:UpdateItem on CatalogTable",
        "cloudformation:CreateStack",
    },
    # steps.build_stack.await_build_stack: describe, failure_reasons.
    "AwaitBuildStackFunction": {
        "cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents",
    },
    # steps.build_stack.stop_builder: describe_instance, stop, catalog.update.
    "StopBuilderFunction": {
        "ec2:DescribeInstances", "ec2:StopInstances", "dynamodb:UpdateItem on CatalogTable",
    },
    # steps.wait_stop.register_wait: catalog.update, WaitingList.add/remove,
    # describe_instance, stop_check.resume_claimed (catalog.claim_task_token: UpdateItem,
    # GetItem when refused; resume = SendTaskSuccess; release_task_token).
    # A builder already stopped: stop_verdict.verdict_at_stop (console_output,
    # catalog.add_attempt, steps.image.create_image) before the resume.
    "AwaitStopFunction": {
        "dynamodb:UpdateItem on CatalogTable", "dynamodb:PutItem on CatalogTable",
        "dynamodb:DeleteItem on CatalogTable", "ec2:DescribeInstances",
        "states:SendTaskSuccess", "dynamodb:GetItem on CatalogTable",
        "ec2:GetConsoleOutput", "ec2:DescribeImages", "dynamodb:GetItem on RecipesTable",
        "ec2:CreateImage",
    },
    # steps.approval.request_approval: catalog.update (conditional), catalog.get,
    # retire_builders (instances_tagged, terminate), messaging.notify.
    "AwaitApprovalFunction": {
        "dynamodb:UpdateItem on CatalogTable", "dynamodb:GetItem on CatalogTable",
        "ec2:DescribeInstances", "ec2:TerminateInstances", "sns:Publish",
    },
    # steps.wait_stop.on_instance_state: describe_instance, catalog.get, resume,
    # WaitingList.remove; and stop_check.check_waiting (WaitingList.all = Query of the
    # #waiting partition of the table itself, instances_tagged, resume, remove).
    # resume_claimed claims and releases the token (UpdateItem); stop_verdict.
    # verdict_at_stop reads the console, records the attempt and runs
    # steps.image.create_image (images_tagged, load_recipe, create_image, catalog.update).
    "InstanceStateFunction": {
        "ec2:DescribeInstances", "dynamodb:GetItem on CatalogTable",
        "dynamodb:Query on CatalogTable", "dynamodb:DeleteItem on CatalogTable",
        "states:SendTaskSuccess", "dynamodb:UpdateItem on CatalogTable",
        "ec2:GetConsoleOutput", "ec2:DescribeImages", "dynamodb:GetItem on RecipesTable",
        "ec2:CreateImage",
    },
    # steps.verify.verify: describe_instance, console_output, terminate, catalog.update.
    "VerifyFunction": {
        "ec2:DescribeInstances", "ec2:GetConsoleOutput", "ec2:TerminateInstances",
        "dynamodb:UpdateItem on CatalogTable",
    },
    # steps.test_phase.launch_tester: load_recipe, instances_tagged, Pacer.take,
    # run_builder, catalog.update (the launch role, shared with Launch).
    "LaunchTesterFunction": {
        "dynamodb:GetItem on RecipesTable", "ec2:DescribeInstances",
        "dynamodb:GetItem on CatalogTable", "dynamodb:UpdateItem on CatalogTable",
        "ec2:RunInstances",
    },
    # steps.test_phase.verify_test: describe_instance, console_output, terminate,
    # catalog.update (the verify role, shared with Verify).
    "VerifyTestFunction": {
        "ec2:DescribeInstances", "ec2:GetConsoleOutput", "ec2:TerminateInstances",
        "dynamodb:UpdateItem on CatalogTable",
    },
    # steps.image.create_image: images_tagged, load_recipe, create_image, catalog.update.
    "CreateImageFunction": {
        "ec2:DescribeImages", "dynamodb:GetItem on RecipesTable", "ec2:CreateImage",
        "dynamodb:UpdateItem on CatalogTable",
    },
    # steps.image_wait.await_image: ImageWaitList.add (PutItem), settle (describe_image
    # per region, resume / fail_task, ImageWaitList.remove: a conditional DeleteItem).
    "AwaitImageFunction": {
        "dynamodb:PutItem on CatalogTable", "ec2:DescribeImages", "states:SendTaskSuccess",
        "states:SendTaskFailure", "dynamodb:DeleteItem on CatalogTable",
    },
    # steps.image_wait.on_image_state: ImageWaitList.get (GetItem) or .all (Query, the
    # check), then settle as above.
    "ImageStateFunction": {
        "dynamodb:GetItem on CatalogTable", "dynamodb:Query on CatalogTable",
        "ec2:DescribeImages", "states:SendTaskSuccess", "states:SendTaskFailure",
        "dynamodb:DeleteItem on CatalogTable",
    },
    # steps.distribute.distribute: load_recipe, images_tagged, copy_image, catalog.update,
    # describe_image (all EC2 calls in the destination regions).
    "DistributeFunction": {
        "dynamodb:GetItem on RecipesTable", "ec2:DescribeImages", "ec2:CopyImage",
        "dynamodb:UpdateItem on CatalogTable",
    },
    # steps.register.register_and_finish: describe_image, share_image, ssm.put_latest,
    # catalog.get, catalog.mark_available (UpdateItem), messaging.notify; then Finish.
    "RegisterFunction": {
        "ec2:DescribeImages", "ec2:ModifyImageAttribute", "ec2:ModifySnapshotAttribute",
        "ssm:PutParameter", "ssm:AddTagsToResource", "dynamodb:GetItem on CatalogTable",
        "dynamodb:UpdateItem on CatalogTable", "sns:Publish",
        # catalog.unmark_available puts back the build's #in-flight marker.
        "dynamodb:PutItem on CatalogTable",
        # which build latest names (catalog.latest, published_hash), and the put-back.
        "dynamodb:Query on CatalogTable/index/available", "dynamodb:GetItem on RecipesTable",
        "ssm:GetParameter", "ssm:DeleteParameter",
        # register_and_finish: then steps.finish.finish, as FinishFunction below.
        "cloudformation:DescribeStacks", "cloudformation:DeleteStack",
        "ec2:DescribeInstances", "ec2:TerminateInstances", "ec2:DeregisterImage",
        "ec2:DeleteSnapshot", "sqs:SendMessage",
        "ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions",
        "ec2:DescribeSpotFleetRequests", "ec2:DescribeFleets",
        "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeAutoScalingGroups",
        "ssm:DescribeParameters", "ssm:GetParameters", "ec2:DescribeSnapshots",
    },
    # steps.rollout.roll_out: load_recipe, launch_templates.default_version/add_version/
    # set_default, ec2.describe_image, autoscaling.group/start_refresh (refreshes when one
    # runs already), catalog.update; on failure roll_back of the refreshes started and
    # revert_templates (default_version, set_default).
    "RollOutFunction": {
        "dynamodb:GetItem on RecipesTable", "dynamodb:UpdateItem on CatalogTable",
        "ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions",
        "ec2:DescribeImages", "ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate",
        "autoscaling:DescribeAutoScalingGroups", "autoscaling:StartInstanceRefresh",
        "autoscaling:DescribeInstanceRefreshes", "autoscaling:RollbackInstanceRefresh",
    },
    # steps.refresh_wait.handle: park (RefreshWaitList.add: PutItem), the event (.get:
    # GetItem), the check (.all: Query); settle (autoscaling.refreshes, catalog.update,
    # resume, RefreshWaitList.remove: a conditional DeleteItem); time_out (roll_back).
    "AwaitRefreshFunction": {
        "autoscaling:DescribeInstanceRefreshes", "autoscaling:RollbackInstanceRefresh",
        "dynamodb:UpdateItem on CatalogTable", "dynamodb:PutItem on CatalogTable",
        "dynamodb:GetItem on CatalogTable", "dynamodb:Query on CatalogTable",
        "dynamodb:DeleteItem on CatalogTable", "states:SendTaskSuccess",
    },
    # steps.rollout_back.roll_back_release: catalog.get/available/update, revert_templates,
    # published_hash, rollbacks.revoke/note_rollback, sync_latest (GetParameter,
    # PutParameter + tags), _drop_orphans (DeleteParameter), notify.
    "RollBackReleaseFunction": {
        "dynamodb:GetItem on CatalogTable", "dynamodb:UpdateItem on CatalogTable",
        "dynamodb:Query on CatalogTable/index/available", "dynamodb:GetItem on RecipesTable",
        "ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions",
        "ec2:ModifyLaunchTemplate", "ssm:GetParameter", "ssm:PutParameter",
        "ssm:AddTagsToResource", "ssm:DeleteParameter", "sns:Publish",
    },
    # steps.finish.finish: cleanup_build (delete_build_stack: DescribeStacks + DeleteStack;
    # instances_tagged, terminate, images_tagged, catalog.get; the deletion gate's facts
    # (steps/gate.py: the latest parameter, usage.images_in_use, build_images and
    # build_snapshots) and executor (DeregisterImage, DeleteSnapshot)),
    # messaging.send_cleanup.
    "FinishFunction": {
        "cloudformation:DescribeStacks", "cloudformation:DeleteStack",
        "ec2:DescribeInstances", "ec2:TerminateInstances", "ec2:DescribeImages",
        "dynamodb:GetItem on CatalogTable", "ec2:DeregisterImage", "ec2:DeleteSnapshot",
        "sqs:SendMessage",
        "ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions",
        "ec2:DescribeSpotFleetRequests", "ec2:DescribeFleets",
        "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeAutoScalingGroups",
        "ssm:DescribeParameters", "ssm:GetParameters", "ssm:GetParameter",
        "ec2:DescribeSnapshots",
    },
    # steps.finish.record_failure: catalog.get, console_output, cleanup_build (as above),
    # catalog.mark_failed (UpdateItem), notify, send_cleanup.
    "RecordFailureFunction": {
        "dynamodb:GetItem on CatalogTable", "ec2:GetConsoleOutput",
        "cloudformation:DescribeStacks", "cloudformation:DeleteStack",
        "ec2:DescribeInstances", "ec2:TerminateInstances", "ec2:DescribeImages",
        "ec2:DeregisterImage", "ec2:DeleteSnapshot", "dynamodb:UpdateItem on CatalogTable",
        "sns:Publish", "sqs:SendMessage",
        # catalog.record_failed: a build that failed in Resolve before it had a record.
        "dynamodb:PutItem on CatalogTable",
        "ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions",
        "ec2:DescribeSpotFleetRequests", "ec2:DescribeFleets",
        "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeAutoScalingGroups",
        "ssm:DescribeParameters", "ssm:GetParameters", "ssm:GetParameter",
        "ec2:DescribeSnapshots",
        # undoing a Register that died half way: sync_latest (catalog.latest, SSM).
        "dynamodb:Query on CatalogTable/index/available", "dynamodb:GetItem on RecipesTable",
        "ssm:PutParameter", "ssm:AddTagsToResource",
    },
    # steps.cleanup.cleanup_messages: cleanup_build per message; a refused message is sent
    # to the dead-letter queue (messaging.dead_letter). (Receiving and deleting the
    # messages is Lambda's event source mapping: see platform_actions.)
    "CleanupFunction": {
        "cloudformation:DescribeStacks", "cloudformation:DeleteStack",
        "ec2:DescribeInstances", "ec2:TerminateInstances", "ec2:DescribeImages",
        "dynamodb:GetItem on CatalogTable", "ec2:DeregisterImage", "ec2:DeleteSnapshot",
        "sqs:SendMessage",
        "ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions",
        "ec2:DescribeSpotFleetRequests", "ec2:DescribeFleets",
        "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeAutoScalingGroups",
        "ssm:DescribeParameters", "ssm:GetParameters", "ssm:GetParameter",
        "ec2:DescribeSnapshots",
    },
    # handlers.latest_ami.handler -> steps.latest.respond -> custom_resource.respond ->
    # latest_ami_resource -> catalog.latest (Query on the sparse index). The answer is an
    # HTTP PUT to a pre-signed URL: no IAM.
    "LatestAmiFunction": {"dynamodb:Query on CatalogTable/index/available",
                          "dynamodb:GetItem on RecipesTable"},
    # steps.detect.detect: store.all_current (Query on the current index) or, for named
    # recipes, store.named (GetItem), resolve_bases, start_build, store.claim (UpdateItem).
    "DetectFunction": {
        "dynamodb:Query on RecipesTable/index/current", "dynamodb:GetItem on RecipesTable",
        "ssm:GetParameters", "ec2:DescribeImages",
        "states:StartExecution", "dynamodb:UpdateItem on RecipesTable",
        # claimed_builds (catalog.get_many, find_key), start_next (catalog.latest),
        # start_and_claim (catalog.announce: the STARTING record).
        "dynamodb:BatchGetItem on CatalogTable", "dynamodb:Query on CatalogTable",
        "dynamodb:Query on CatalogTable/index/available", "dynamodb:PutItem on CatalogTable",
        # steps.release.rerelease: catalog.update, put_latest per region, notify; then
        # detect reads the re-released record (catalog.get).
        "dynamodb:UpdateItem on CatalogTable", "ssm:PutParameter", "ssm:AddTagsToResource", "sns:Publish",
        "dynamodb:GetItem on CatalogTable",
    },
    # steps.prune.prune: store.all_current, catalog.history (Query), usage.images_in_use
    # (instances_using, DescribeParameters + GetParameters, launch templates and their
    # versions, launch configurations and groups), deregister_with_snapshots,
    # catalog.get, delete_snapshot, catalog.update, enable_deprecation; _prune's
    # _delete_left_snapshots lists the build's images and snapshots by tag per region.
    "PruneFunction": {
        "dynamodb:Query on RecipesTable/index/current", "dynamodb:Query on CatalogTable",
        # catalog.history: the history index (the partition only on a table without it).
        "dynamodb:Query on CatalogTable/index/history",
        "dynamodb:GetItem on CatalogTable", "dynamodb:UpdateItem on CatalogTable",
        "ec2:DescribeInstances", "ssm:DescribeParameters", "ssm:GetParameters",
        "ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions",
        "ec2:DescribeSpotFleetRequests", "ec2:DescribeFleets",
        "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeAutoScalingGroups",
        "ec2:DescribeImages", "ec2:DeregisterImage", "ec2:DeleteSnapshot",
        "ec2:EnableImageDeprecation", "ec2:DescribeSnapshots", "ssm:GetParameter",
    },
    # steps.sweep.sweep: store.all_current, find_leftovers (builders, build_images,
    # build_snapshots), catalog.history/get, DescribeExecution, store.version (budget),
    # StopExecution, catalog.mark_failed, notify, terminate; images and snapshots through
    # the deletion gate (as Finish); build stacks: stacks_named (ListStacks,
    # DescribeStacks) and delete; latest_repair (GetParameter, DescribeImages,
    # PutParameter).
    "SweepFunction": {
        "cloudformation:ListStacks", "cloudformation:DescribeStacks",
        "cloudformation:DeleteStack",
        "dynamodb:Query on RecipesTable/index/current", "dynamodb:GetItem on RecipesTable",
        "ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeSnapshots",
        "dynamodb:Query on CatalogTable", "dynamodb:GetItem on CatalogTable",
        # catalog.in_flight: the #in-flight markers (Query), their records (BatchGetItem),
        # the markers of ended builds (DeleteItem); latest_repair: catalog.available.
        "dynamodb:BatchGetItem on CatalogTable", "dynamodb:DeleteItem on CatalogTable",
        "dynamodb:Query on CatalogTable/index/available",
        "states:DescribeExecution", "states:StopExecution",
        "dynamodb:UpdateItem on CatalogTable", "sns:Publish", "ec2:TerminateInstances",
        "ec2:DeregisterImage", "ec2:DeleteSnapshot", "ssm:PutParameter", "ssm:AddTagsToResource",
        "ec2:DescribeLaunchTemplates", "ec2:DescribeLaunchTemplateVersions",
        "ec2:DescribeSpotFleetRequests", "ec2:DescribeFleets",
        "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeAutoScalingGroups",
        "ssm:DescribeParameters", "ssm:GetParameters", "ssm:GetParameter",
    },
}

# Operations the call graph reaches in a function's code that the function never calls,
# each with the reason. Keep this short: every entry is a place the analysis is coarser
# than the code.
REACHABLE_NOT_CALLED: dict[str, dict[str, str]] = {}

# IAM actions AWS evaluates besides the operation's own, given how amiforge calls it.
# Only the ones amiforge's parameters trigger; (required, why).
_EBS_CMK = ("kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey",
            "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom", "kms:ReEncryptTo")
IMPLIED: dict[str, list[tuple[str, str]]] = {
    # aws/ec2.run_builder: TagSpecifications (instance, volume) are authorised as
    # ec2:CreateTags; IamInstanceProfile needs iam:PassRole (the template grants it under
    # the HasBuilderProfile condition, exactly when the code passes a profile); encrypted
    # volumes with the recipe's image.kms_key_id need EBS's KMS actions (via EC2).
    "ec2:RunInstances": [("ec2:CreateTags", "TagSpecifications"),
                         ("iam:PassRole", "IamInstanceProfile (if a profile is set)"),
                         *[(a, "encrypted EBS with a customer key") for a in _EBS_CMK]],
    # aws/ec2.create_image: TagSpecifications (image, snapshot).
    "ec2:CreateImage": [("ec2:CreateTags", "TagSpecifications")],
    # aws/ec2.copy_image: TagSpecifications, Encrypted=True (+ KmsKeyId of the region).
    "ec2:CopyImage": [("ec2:CreateTags", "TagSpecifications"),
                      *[(a, "encrypted copy with a customer key") for a in _EBS_CMK]],
    # aws/cloudformation.create: RoleARN (BuildStackRole) needs iam:PassRole; a TemplateURL
    # (a build template over 51,200 bytes) is read from S3 with the caller's credentials,
    # for ValidateTemplate too.
    "cloudformation:CreateStack": [("iam:PassRole", "RoleARN"),
                                   ("s3:GetObject", "TemplateURL")],
    "cloudformation:ValidateTemplate": [("s3:GetObject", "TemplateURL")],
    # Deleting a stack created with a service role acts as that role: iam:PassRole.
    "cloudformation:DeleteStack": [("iam:PassRole", "the stack's service role")],
    # aws/ssm.put_latest: DataType aws:ec2:image, which SSM validates as the caller.
    "ssm:PutParameter": [("ec2:DescribeImages", "DataType aws:ec2:image validation")],
}
# Granted for a call but not provably required; not checked, but not "unused" either.
#  - cloudformation:TagResource: CreateStack with Tags (tag-on-create authorisation).
# Not needed, documented: sns:Publish to a topic encrypted with the AWS managed key
# alias/aws/sns, and sqs:SendMessage to an SQS-managed-SSE queue, need no kms actions;
# DynamoDB SSE with the AWS owned key neither; GetConsoleOutput/terminate etc. need no
# extra actions. kms for EBS is only exercised when a recipe names a customer key.
OPTIONAL_IMPLIED: dict[str, list[str]] = {
    "cloudformation:CreateStack": ["cloudformation:TagResource"],
}

# Services amiforge's code can reach, with their IAM prefix (botocore's signing name).
SERVICES = ("ec2", "dynamodb", "stepfunctions", "ssm", "sqs", "sns", "cloudformation",
            "autoscaling", "kms", "s3", "logs", "sts", "lambda", "events", "iam")
# A variable or attribute with this name and no other known type is a client of that
# service (``ec2: Any`` parameters in aws/*.py, ``self.db`` in the stores).
CLIENT_NAMES = {"ec2": "ec2", "ssm": "ssm", "sns": "sns", "sqs": "sqs",
                "cfn": "cloudformation", "sfn": "stepfunctions", "dynamodb": "dynamodb",
                "db": "dynamodb", "autoscaling": "autoscaling", "s3": "s3", "kms": "kms"}
CLIENT_NON_OPERATIONS = {"get_paginator", "get_waiter", "can_paginate", "close",
                         "generate_presigned_url", "exceptions", "meta"}
BUILTIN_METHODS = frozenset(
    name for kind in (dict, list, set, frozenset, str, bytes, tuple, int, float)
    for name in dir(kind) if not name.startswith("_"))

SRC = Path(amiforge.__file__).parent


# --------------------------------------------------------------------------- boto models
def _operations() -> dict[str, dict[str, str]]:
    """{client service: {snake_case method: IAM action}} from botocore's models."""
    session = botocore.session.get_session()
    out: dict[str, dict[str, str]] = {}
    for service in SERVICES:
        model = session.get_service_model(service)
        prefix = model.signing_name
        out[service] = {botocore.xform_name(op): f"{prefix}:{op}"
                        for op in model.operation_names}
    return out


OPERATIONS = _operations()
ALL_OPERATION_NAMES = frozenset(n for ops in OPERATIONS.values() for n in ops)


# --------------------------------------------------------------------------- call graph
Type = tuple  # ("inst"|"cls", (module, Class)) | ("module", m) | ("func", key)
#               | ("client", service) | ("external",)


@dataclass
class Module:
    name: str
    tree: ast.Module
    imports: dict[str, Type] = field(default_factory=dict)
    functions: dict[str, ast.FunctionDef] = field(default_factory=dict)
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)
    assigned: dict[str, ast.expr] = field(default_factory=dict)


def _module_path(name: str) -> Path | None:
    if name != "amiforge" and not name.startswith("amiforge."):
        return None
    parts = name.split(".")[1:]
    for path in (SRC.joinpath(*parts).with_suffix(".py") if parts else None,
                 SRC.joinpath(*parts, "__init__.py")):
        if path is not None and path.is_file():
            return path
    return None


@dataclass
class Walked:
    edges: set[tuple[str, str]] = field(default_factory=set)
    ops: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


class CallGraph:
    """Function-level call graph of amiforge's code, and the boto3 calls of each function."""

    def __init__(self) -> None:
        self.modules: dict[str, Module] = {}
        self.walked: dict[tuple[tuple[str, str], frozenset[str]], Walked] = {}

    # -- modules ---------------------------------------------------------------------
    def module(self, name: str) -> Module:
        if name not in self.modules:
            path = _module_path(name)
            assert path is not None, name
            tree = ast.parse(path.read_text(), filename=str(path))
            mod = Module(name, tree)
            self.modules[name] = mod
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        if _module_path(alias.name) and alias.asname:
                            mod.imports[alias.asname] = ("module", alias.name)
                        else:
                            mod.imports[(alias.asname or alias.name).split(".")[0]] = (
                                "external",)
                elif isinstance(node, ast.ImportFrom) and node.module:
                    for alias in node.names:
                        local = alias.asname or alias.name
                        sub = f"{node.module}.{alias.name}"
                        if _module_path(sub):
                            mod.imports[local] = ("module", sub)
                        elif _module_path(node.module):
                            mod.imports[local] = ("symbol", node.module, alias.name)
                        else:
                            mod.imports[local] = ("external",)
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    mod.functions[node.name] = node
                elif isinstance(node, ast.ClassDef):
                    mod.classes[node.name] = node
                elif isinstance(node, ast.Assign):
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            mod.assigned[target.id] = node.value
        return self.modules[name]

    def import_closure(self, start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for kind in self.module(name).imports.values():
                if kind[0] in ("module", "symbol"):
                    todo.append(kind[1])
        return seen

    def resolve_global(self, modname: str, name: str) -> Type | None:
        mod = self.module(modname)
        if name in mod.functions:
            return ("func", (modname, name))
        if name in mod.classes:
            return ("cls", (modname, name))
        kind = mod.imports.get(name)
        if kind is not None:
            if kind[0] == "symbol":
                return self.resolve_global(kind[1], kind[2]) or ("external",)
            return kind
        if name in mod.assigned:
            return self.infer(mod.assigned[name], _Ctx(modname, None, {}))
        return None

    # -- classes ---------------------------------------------------------------------
    def member(self, cls: tuple[str, str], attr: str) -> Type | None:
        """("method", key, is_property) or ("field", type) of ``cls.attr``."""
        modname, name = cls
        node = self.module(modname).classes[name]
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == attr:
                decorators = {ast.unparse(d).split(".")[-1] for d in item.decorator_list}
                return ("method", (modname, f"{name}.{attr}"),
                        bool(decorators & {"property", "cached_property"}))
            if (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                    and item.target.id == attr):
                return ("field", self.annotation(item.annotation, modname))
        for item in node.body:  # self.attr = ... in a method
            if isinstance(item, ast.FunctionDef):
                for sub in ast.walk(item):
                    if isinstance(sub, ast.Assign):
                        for target in sub.targets:
                            if (isinstance(target, ast.Attribute) and target.attr == attr
                                    and isinstance(target.value, ast.Name)
                                    and target.value.id == "self"):
                                ctx = self.context(modname, name, item)
                                return ("field", self.infer(sub.value, ctx))
        for base in node.bases:
            found = self.infer(base, _Ctx(modname, None, {}))
            if found and found[0] == "cls":
                result = self.member(found[1], attr)
                if result is not None:
                    return result
        return None

    def constructors(self, cls: tuple[str, str]) -> set[tuple[str, str]]:
        out = set()
        for name in ("__init__", "__post_init__"):
            found = self.member(cls, name)
            if found and found[0] == "method":
                out.add(found[1])
        return out

    def methods_named(self, attr: str, modules: set[str]) -> set[tuple[str, str]]:
        out = set()
        for modname in modules:
            for cname, node in self.module(modname).classes.items():
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                            and item.name == attr:
                        out.add((modname, f"{cname}.{attr}"))
        return out

    # -- types -----------------------------------------------------------------------
    def annotation(self, node: ast.expr | None, modname: str) -> Type | None:
        if node is None:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return self.annotation(ast.parse(node.value, mode="eval").body, modname)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self.annotation(node.left, modname) or self.annotation(node.right, modname)
        if isinstance(node, (ast.Name, ast.Attribute)):
            found = self.infer(node, _Ctx(modname, None, {}))
            if found and found[0] == "cls":
                return ("inst", found[1])
        return None

    def function_node(self, key: tuple[str, str]) -> tuple[ast.AST, str | None]:
        modname, qual = key
        mod = self.module(modname)
        if "." in qual:
            cname, fname = qual.split(".", 1)
            for item in mod.classes[cname].body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                        and item.name == fname:
                    return item, cname
            raise KeyError(key)
        if qual in mod.functions:
            return mod.functions[qual], None
        return mod.assigned[qual], None  # a module-level handler = lambda_handler(step)

    def context(self, modname: str, cls: str | None, node: ast.AST) -> _Ctx:
        ctx = _Ctx(modname, cls, {})
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            static = any(ast.unparse(d) == "staticmethod" for d in node.decorator_list)
            for index, arg in enumerate(args):
                if index == 0 and cls and not static:
                    is_cls = any(ast.unparse(d) == "classmethod" for d in node.decorator_list)
                    ctx.locals[arg.arg] = ("cls" if is_cls else "inst", (modname, cls))
                else:
                    ctx.locals[arg.arg] = self.annotation(arg.annotation, modname)
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                ctx.locals.setdefault(sub.id, None)
            elif isinstance(sub, ast.arg):
                ctx.locals.setdefault(sub.arg, None)
        for _ in range(2):  # assignments, in any order
            for sub in ast.walk(node):
                targets, value = [], None
                if isinstance(sub, ast.Assign):
                    targets, value = sub.targets, sub.value
                elif (isinstance(sub, ast.AnnAssign) and sub.value is not None
                      or isinstance(sub, ast.NamedExpr)):
                    targets, value = [sub.target], sub.value
                for target in targets:
                    if isinstance(target, ast.Name) and ctx.locals.get(target.id) is None:
                        ctx.locals[target.id] = self.infer(value, ctx)
        return ctx

    def infer(self, node: ast.expr, ctx: _Ctx) -> Type | None:
        if isinstance(node, ast.Name):
            if node.id in ctx.locals:
                found = ctx.locals[node.id]
                if found is None and node.id in CLIENT_NAMES:
                    return ("client", CLIENT_NAMES[node.id])
                return found
            return self.resolve_global(ctx.module, node.id)
        if isinstance(node, ast.Attribute):
            base = self.infer(node.value, ctx)
            if base is not None:
                if base[0] == "module":
                    return self.resolve_global(base[1], node.attr)
                if base[0] in ("inst", "cls"):
                    found = self.member(base[1], node.attr)
                    if found and found[0] == "field" and found[1] is not None:
                        return found[1]
                    if found and found[0] == "method":
                        if found[2]:  # property: its return annotation
                            fnode, _ = self.function_node(found[1])
                            return self.annotation(fnode.returns, found[1][0])
                        return ("func", found[1])
                if base[0] == "external":
                    return ("external",)
                if base[0] == "client":
                    return None
            if node.attr in CLIENT_NAMES:
                return ("client", CLIENT_NAMES[node.attr])
            return None
        if isinstance(node, ast.Call):
            func = node.func
            if (isinstance(func, ast.Attribute) and func.attr == "client" and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)):
                return ("client", node.args[0].value)
            found = self.infer(func, ctx)
            if found is None:
                return None
            if found[0] == "cls":
                return ("inst", found[1])
            if found[0] == "func":
                fnode, _ = self.function_node(found[1])
                return self.annotation(getattr(fnode, "returns", None), found[1][0])
            if found[0] == "external":
                return ("external",)
            return None
        if isinstance(node, ast.IfExp):
            return self.infer(node.body, ctx) or self.infer(node.orelse, ctx)
        if isinstance(node, ast.BoolOp):
            for value in node.values:
                found = self.infer(value, ctx)
                if found is not None:
                    return found
        return None

    # -- walking ---------------------------------------------------------------------
    def walk(self, key: tuple[str, str], scope: set[str]) -> Walked:
        """Edges, boto3 operations and problems of one function (``scope``: the modules
        whose classes a method called on an untyped value may belong to)."""
        cache = (key, frozenset(scope))
        if cache in self.walked:
            return self.walked[cache]
        out = Walked()
        self.walked[cache] = out
        node, cls = self.function_node(key)
        ctx = self.context(key[0], cls, node)
        where = f"{key[0]}.{key[1]}"
        called = {id(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                self._call(sub, ctx, out, scope, where)
            elif (isinstance(sub, (ast.Name, ast.Attribute)) and isinstance(sub.ctx, ast.Load)
                  and id(sub) not in called):
                self._reference(sub, ctx, out)
        return out

    def _target(self, found: Type | None, out: Walked) -> None:
        if found is None:
            return
        if found[0] == "func":
            out.edges.add(found[1])
        elif found[0] == "cls":
            out.edges |= self.constructors(found[1])

    def _reference(self, node: ast.expr, ctx: _Ctx, out: Walked) -> None:
        """A named amiforge function used as a value (a callback, a property read)."""
        if isinstance(node, ast.Attribute):
            base = self.infer(node.value, ctx)
            if base and base[0] in ("inst", "cls"):
                found = self.member(base[1], node.attr)
                if found and found[0] == "method":
                    out.edges.add(found[1])
                return
            if not (base and base[0] == "module"):
                return
        found = self.infer(node, ctx)
        if found and found[0] == "func":
            out.edges.add(found[1])

    def _call(self, call: ast.Call, ctx: _Ctx, out: Walked, scope: set[str],
              where: str) -> None:
        func = call.func
        if isinstance(func, ast.Name):
            if func.id not in ctx.locals:
                self._target(self.resolve_global(ctx.module, func.id), out)
            return
        if not isinstance(func, ast.Attribute):
            return
        base = self.infer(func.value, ctx)
        attr = func.attr
        if base is None:
            if attr in BUILTIN_METHODS:
                return
            if attr in ALL_OPERATION_NAMES:
                out.problems.append(f"{where}: .{attr}() on a value of unknown type "
                                    f"({ast.unparse(func.value)}) looks like an AWS call")
            out.edges |= self.methods_named(attr, scope)
        elif base[0] == "client":
            service = base[1]
            if service not in OPERATIONS:
                out.problems.append(f"{where}: client of unlisted service {service!r}")
                return
            if attr == "get_paginator":
                arg = call.args[0] if call.args else None
                if isinstance(arg, ast.Constant) and arg.value in OPERATIONS[service]:
                    out.ops.add(OPERATIONS[service][arg.value])
                else:
                    out.problems.append(f"{where}: paginator {ast.unparse(call)} unresolved")
            elif attr in OPERATIONS[service]:
                out.ops.add(OPERATIONS[service][attr])
            elif attr not in CLIENT_NON_OPERATIONS:
                out.problems.append(f"{where}: {service} client has no operation {attr}")
        elif base[0] == "module":
            self._target(self.resolve_global(base[1], attr), out)
        elif base[0] in ("inst", "cls"):
            found = self.member(base[1], attr)
            if found and found[0] == "method":
                out.edges.add(found[1])

    def reach(self, start: tuple[str, str]) -> tuple[set[str], dict[str, list[str]], list[str]]:
        """Operations reachable from ``start``, a path to each, and problems met."""
        scope = self.import_closure(start[0])
        paths: dict[tuple[str, str], list[str]] = {start: [f"{start[0]}.{start[1]}"]}
        todo = [start]
        ops: dict[str, list[str]] = {}
        problems: list[str] = []
        while todo:
            key = todo.pop(0)
            walked = self.walk(key, scope)
            problems += walked.problems
            for op in walked.ops:
                ops.setdefault(op, paths[key])
            for edge in sorted(walked.edges):
                if edge not in paths:
                    paths[edge] = [*paths[key], f"{edge[0]}.{edge[1]}"]
                    todo.append(edge)
        return set(ops), ops, problems


@dataclass
class _Ctx:
    module: str
    cls: str | None
    locals: dict[str, Type | None]


# --------------------------------------------------------------------------- template
@pytest.fixture(scope="module")
def template() -> dict:
    return loads(template_text())


def functions(template: dict) -> dict[str, dict]:
    return {name: r for name, r in template["Resources"].items()
            if r["Type"] == "AWS::Lambda::Function"}


def handler_key(handler: str) -> tuple[str, str]:
    """The function a handler string runs: a pipeline handler is a ``Step`` naming its
    step function (imported when first called), which is where the calls are."""
    module, _, name = handler.rpartition(".")
    if module == "amiforge.handlers.pipeline":
        step = pipeline.HANDLERS[name]
        return f"amiforge.steps.{step.module}", step.function
    return module, name


def _logical(value: Any) -> str:
    """Logical id named by a !Ref / !GetAtt."""
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        att = value["Fn::GetAtt"]
        return (att if isinstance(att, list) else att.split("."))[0]
    raise AssertionError(f"not a !Ref or !GetAtt: {value!r}")


@dataclass(frozen=True)
class Statement:
    owner: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]  # symbolic: "CatalogTable", "CatalogTable/index/x", "*", ...
    conditional: bool


def _resource(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::If" in value:
        # A table the stack creates, or the one a destroyed stack retained: the same table
        # either way (test_template checks that both branches name it).
        return _resource(value["Fn::If"][1])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return _logical(value)
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
        return text.replace(".Arn}", "}").replace("${", "").replace("}", "") \
            if text.startswith("${") else text
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    return repr(value)


def statements(template: dict, role: str) -> list[Statement]:
    resources = template["Resources"]
    props = resources[role]["Properties"]
    documents = [(f"{role}/{p['PolicyName']}", p["PolicyDocument"])
                 for p in props.get("Policies", [])]
    for arn in props.get("ManagedPolicyArns", []):
        name = _logical(arn)  # an AWS managed policy (a plain ARN) fails here: add it
        assert resources[name]["Type"] == "AWS::IAM::ManagedPolicy", name
        documents.append((name, resources[name]["Properties"]["PolicyDocument"]))
    out = []
    for owner, document in documents:
        for raw in document["Statement"]:
            branches, conditional = [raw], False
            if isinstance(raw, dict) and "Fn::If" in raw:
                branches = [b for b in raw["Fn::If"][1:] if b != {"Ref": "AWS::NoValue"}]
                conditional = True
            for st in branches:
                assert "NotAction" not in st and "NotResource" not in st, (owner, st)
                assert st["Effect"] == "Allow", f"{owner}: Deny is not evaluated here"
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                res = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                out.append(Statement(owner, tuple(actions), tuple(_resource(r) for r in res),
                                     conditional))
    return out


def _action_matches(action: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def allowed(stmts: list[Statement], action: str, resource: str | None) -> bool:
    for st in stmts:
        if not any(_action_matches(action, p) for p in st.actions):
            continue
        if resource is None or any(fnmatch.fnmatchcase(resource, r) for r in st.resources):
            return True
    return False


def platform_actions(template: dict, function: str) -> list[tuple[str, str | None, str]]:
    """What Lambda does with the function's role, not the code: (action, resource, why)."""
    out: list[tuple[str, str | None, str]] = [
        # Log groups are created by the template; the runtime streams into them.
        ("logs:CreateLogStream", None, "Lambda runtime logging"),
        ("logs:PutLogEvents", None, "Lambda runtime logging"),
    ]
    for r in template["Resources"].values():
        if (r["Type"] == "AWS::Lambda::EventSourceMapping"
                and _logical(r["Properties"]["FunctionName"]) == function):
            source = _logical(r["Properties"]["EventSourceArn"])
            if template["Resources"][source]["Type"] == "AWS::SQS::Queue":
                out += [(a, None, f"SQS event source mapping on {source}") for a in
                        ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")]
    return out


def split(entry: str) -> tuple[str, str | None]:
    action, _, resource = entry.partition(" on ")
    return action, resource or None


# Operations IAM authorises under another action's name.
AUTHORISED_AS = {"s3:HeadObject": "s3:GetObject"}


def required(template: dict, function: str) -> list[tuple[str, str | None, str]]:
    out = []
    for entry in sorted(CALLS[function]):
        action, resource = split(entry)
        out.append((AUTHORISED_AS.get(action, action), resource, "called"))
        out += [(extra, None, f"{action} with {why}") for extra, why in IMPLIED.get(action, [])]
    return out + platform_actions(template, function)


@pytest.fixture(scope="module")
def graph() -> CallGraph:
    return CallGraph()


# --------------------------------------------------------------------------- tests
def test_the_table_names_exactly_the_templates_functions(template: dict) -> None:
    assert set(CALLS) == set(functions(template))
    assert set(REACHABLE_NOT_CALLED) <= set(CALLS)


def test_every_call_is_allowed_by_the_role(template: dict) -> None:
    missing = []
    for name, fn in sorted(functions(template).items()):
        role = _logical(fn["Properties"]["Role"])
        stmts = statements(template, role)
        for action, resource, why in required(template, name):
            if not allowed(stmts, action, resource):
                on = f" on {resource}" if resource else ""
                missing.append(f"{name} ({role}): {action}{on}  [{why}]")
    assert missing == [], "actions the code needs that the role does not allow:\n  " + \
        "\n  ".join(missing)


def test_the_table_matches_the_code(template: dict, graph: CallGraph) -> None:
    drift, problems = [], []
    for name, fn in sorted(functions(template).items()):
        found, paths, trouble = graph.reach(handler_key(fn["Properties"]["Handler"]))
        problems += trouble
        table = {split(e)[0] for e in CALLS[name]}
        excused = REACHABLE_NOT_CALLED.get(name, {})
        for op in sorted(found - table - set(excused)):
            drift.append(f"{name}: code reaches {op} (via {' -> '.join(paths[op])}) "
                         "but CALLS does not list it")
        for op in sorted(table - found):
            drift.append(f"{name}: CALLS lists {op} but the code does not reach it")
        for op in sorted(set(excused) & table):
            drift.append(f"{name}: {op} is both in CALLS and REACHABLE_NOT_CALLED")
        for op in sorted(set(excused) - found):
            drift.append(f"{name}: REACHABLE_NOT_CALLED {op} is no longer reachable")
    assert sorted(set(problems)) == [], "calls the analysis could not place"
    assert drift == [], "\n  ".join(["CALLS drifted from the code:", *drift])


def test_the_analysis_finds_calls_through_every_path_it_claims_to(graph: CallGraph) -> None:
    # Property (env.catalog), typed local (WaitingList(...)), annotated parameter
    # (waits: WaitingList), callback reference (pacer hook), module alias (ec2_api),
    # paginator, .client("...") receiver: each is how a real call is reached.
    found, _, _ = graph.reach(("amiforge.aws.pacing", "Pacer.install"))
    assert found == {"dynamodb:GetItem", "dynamodb:UpdateItem"}  # hook = reference
    found, _, _ = graph.reach(("amiforge.steps.launch", "launch"))
    assert {"ec2:DescribeInstances", "ec2:RunInstances", "dynamodb:GetItem"} <= found
    found, _, _ = graph.reach(("amiforge.steps.stop_check", "check_waiting"))
    assert {"dynamodb:Query", "dynamodb:DeleteItem", "states:SendTaskSuccess"} <= found
    found, _, _ = graph.reach(("amiforge.handlers.latest_ami", "handler"))
    assert found == {"dynamodb:Query", "dynamodb:GetItem"}


def test_the_policy_evaluator() -> None:
    wildcard = [Statement("p", ("ec2:Describe*",), ("*",), False)]
    assert allowed(wildcard, "ec2:DescribeSnapshots", None)
    assert not allowed(wildcard, "ec2:DeleteSnapshot", None)
    table = [Statement("p", ("dynamodb:Query",), ("CatalogTable",), False)]
    assert allowed(table, "dynamodb:Query", "CatalogTable")
    assert not allowed(table, "dynamodb:Query", "CatalogTable/index/available")
    assert not allowed(table, "dynamodb:Query", "RecipesTable")
    assert _resource({"Fn::Sub": "${CatalogTable.Arn}/index/available"}) == \
        "CatalogTable/index/available"


def test_report_granted_but_never_called(template: dict) -> None:
    """Informational: actions a role allows that nothing above needs (never fails)."""
    unused = []
    for name, fn in sorted(functions(template).items()):
        role = _logical(fn["Properties"]["Role"])
        needed = {a for a, _, _ in required(template, name)}
        needed |= {o for e in CALLS[name] for o in OPTIONAL_IMPLIED.get(split(e)[0], [])}
        for st in statements(template, role):
            for pattern in st.actions:
                if not any(_action_matches(a, pattern) for a in needed):
                    unused.append(f"{name} ({st.owner}): {pattern}")
    print("\ngranted but never called:\n  " + ("\n  ".join(unused) or "(none)"))
