"""Steps of the CloudFormation builder (SABS's way): a build stack configures the instance.

The recipe's template (``build.cloudformation``) gets the base AMI (parameter
``BaseImageId``; also ``RecipeName`` and ``BuildId`` if it declares them) and amiforge's
tags as stack tags, which CloudFormation puts on the instance. It must output
``InstanceId``. Its CreationPolicy / cfn-signal carries the OS configuration's outcome:
CREATE_COMPLETE is success. amiforge then stops the instance (the AwaitStop step waits for
the stop as for any builder), images it, and deletes the stack, on success and on every
failure path (see :func:`delete_build_stack`, called by cleanup).
"""

from __future__ import annotations

from typing import Any

from amiforge.aws import cloudformation as cfn_api
from amiforge.aws import ec2 as ec2_api
from amiforge.aws.pacing import Pacer
from amiforge.core.tags import BUILDER, ROLE
from amiforge.errors import BuildFailed
from amiforge.steps.build_inputs import common_tags, load_recipe
from amiforge.steps.env import StepEnv

FAILED_STATES = ("FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_IN_PROGRESS", "DELETE_COMPLETE",
                 "DELETE_IN_PROGRESS")


STACK_PREFIX = "amiforge-build-"


def stack_name(build_id: str) -> str:
    return f"{STACK_PREFIX}{build_id}"[:128]


def create_build_stack(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    build = state["build"]
    name = stack_name(build["build_id"])
    cfn = env.client("cloudformation")
    existing = cfn_api.describe(cfn, name)
    if existing is None:  # a retried step finds the stack its first run created
        recipe = load_recipe(env, build)
        template = recipe.cloudformation_template()
        declared = cfn_api.declared_parameters(cfn, template)
        values = {"BaseImageId": build["base_ami"], "RecipeName": build["recipe"],
                  "BuildId": build["build_id"], "KmsKeyId": recipe.image.kms_key_id,
                  # The stack's no-inbound group, for templates that declare the parameter.
                  "BuilderSecurityGroupId": env.builder_security_group_id}
        if "BaseImageId" not in declared:
            raise BuildFailed(f"{recipe.build.cloudformation}: the build template must declare "
                              "the parameter BaseImageId (the base AMI amiforge resolved)")
        # The stack launches an instance, from the same account-wide RunInstances bucket
        # as Launch does: it takes a slot of amiforge's launch budget too.
        Pacer(env.client("dynamodb"), env.catalog_table, burst=env.launch_burst,
              per_second=env.launch_per_second).take()
        cfn_api.create(cfn, name=name, template=template,
                       parameters={k: v for k, v in values.items()
                                   if k in declared and v is not None},
                       # build.tags too: CloudFormation copies stack tags onto what it creates.
                       tags={**recipe.build.tags, **common_tags(build, env), ROLE: BUILDER},
                       role_arn=env.build_stack_role_arn, client_token=f"create-{name}")
    return {"stack_name": name, "state": "creating", "polls": 0}


def await_build_stack(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    stack_state = state["stack"]
    polls = int(stack_state.get("polls", 0)) + 1
    cfn = env.client("cloudformation")
    stack = cfn_api.describe(cfn, stack_state["stack_name"])
    status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
    if status == "CREATE_COMPLETE":
        outputs = {o["OutputKey"]: o["OutputValue"] for o in (stack or {}).get("Outputs", [])}
        if "InstanceId" not in outputs:
            raise BuildFailed(f"build stack {stack_state['stack_name']} has no output "
                              "InstanceId: the template must output the build instance's id")
        return {**stack_state, "state": "complete", "polls": polls,
                "instance_id": outputs["InstanceId"]}
    if status.endswith(FAILED_STATES):
        reasons = cfn_api.failure_reasons(cfn, stack_state["stack_name"]) if stack else []
        raise BuildFailed(f"build stack {stack_state['stack_name']} {status}: "
                          + ("; ".join(reasons) or "no failed resource reported"))
    max_polls = max(1, int(state["timing"]["timeout_seconds"])
                    // max(1, int(state["timing"]["poll_seconds"])))
    if polls >= max_polls:
        raise BuildFailed(f"build stack {stack_state['stack_name']} still {status}: timed out "
                          "(build.timeout_minutes)")
    return {**stack_state, "state": "creating", "polls": polls}


def stop_builder(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """Stop the stack's instance so its disk can be imaged; AwaitStop waits for 'stopped'."""
    instance_id = state["stack"]["instance_id"]
    ec2 = env.client("ec2")
    instance = ec2_api.describe_instance(ec2, instance_id)
    current = (instance or {}).get("State", {}).get("Name", "terminated")
    if current in {"pending", "running"}:
        ec2_api.stop(ec2, instance_id)
    env.catalog.update(state["build"]["recipe"], state["build"]["build_id"],
                       instance_id=instance_id, launches=1)
    return {"instance_id": instance_id, "attempt": 1}


def delete_build_stack(env: StepEnv, build_id: str) -> bool:
    return cfn_api.delete(env.client("cloudformation"), stack_name(build_id))
