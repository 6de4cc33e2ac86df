"""Steps of the CloudFormation builder (SABS's way): a build stack configures the instance.

The recipe's template (``build.cloudformation``) gets the base AMI (parameter
``BaseImageId``; also ``RecipeName``, ``BuildId``, the network and ``build.parameters`` if
it declares them: core/template_parameters.py) and amiforge's tags as stack tags, which
CloudFormation puts on the instance. It must output ``InstanceId``. A template over
CloudFormation's inline limit is put in the artifact bucket under its content hash and
passed by URL; one that creates IAM resources gets the IAM capabilities only when the
stack allows it (BuildTemplateIam), and its roles carry the stack's boundary. Its
CreationPolicy / cfn-signal carries the OS configuration's outcome: CREATE_COMPLETE is
success. amiforge then stops the instance (the AwaitStop step waits for
the stop as for any builder), images it, and deletes the stack, on success and on every
failure path (see :func:`delete_build_stack`, called by cleanup).
"""

from __future__ import annotations

import hashlib
from typing import Any

from amiforge.aws import artifacts
from amiforge.aws import cloudformation as cfn_api
from amiforge.aws import ec2 as ec2_api
from amiforge.aws.pacing import Pacer
from amiforge.core.model import Recipe
from amiforge.core.tags import BUILDER, ROLE, STACK
from amiforge.core.template_parameters import (
    IAM_CAPABILITIES,
    INLINE_TEMPLATE_MAX,
    recipe_problems,
    stack_parameters,
)
from amiforge.errors import BuildFailed
from amiforge.steps.build_inputs import common_tags, load_recipe
from amiforge.steps.env import StepEnv

FAILED_STATES = ("FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_IN_PROGRESS", "DELETE_COMPLETE",
                 "DELETE_IN_PROGRESS")


STACK_PREFIX = "amiforge-build-"
# Where large build templates go in the artifact bucket (the key is their SHA-256).
TEMPLATE_PREFIX = "build-templates/"


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
        inline, url = _template_source(template, env)
        declared, needs = cfn_api.template_summary(cfn, inline, url)
        capabilities = _checked(recipe, declared, needs, env)
        if "SecurityGroupIds" in declared:
            _check_groups(recipe, env)
        parameters = stack_parameters(
            recipe, set(declared), base_ami=build["base_ami"], build_id=build["build_id"],
            # The stack's no-inbound group, for templates that declare the parameter.
            builder_security_group=env.builder_security_group_id,
            boundary_arn=env.build_role_boundary_arn)
        # The stack launches an instance, from the same account-wide RunInstances bucket
        # as Launch does: it takes a slot of amiforge's launch budget too.
        Pacer(env.client("dynamodb"), env.catalog_table, burst=env.launch_burst,
              per_second=env.launch_per_second).take()
        cfn_api.create(cfn, name=name, template=inline, template_url=url, parameters=parameters,
                       # build.tags too: CloudFormation copies stack tags onto what it creates.
                       tags={**recipe.build.tags, **common_tags(build, env), ROLE: BUILDER},
                       role_arn=env.build_stack_role_arn, client_token=f"create-{name}",
                       capabilities=capabilities)
    return {"stack_name": name, "state": "creating", "polls": 0}


def _checked(recipe: Recipe, declared: dict[str, dict[str, Any]], needs: tuple[str, ...],
             env: StepEnv) -> tuple[str, ...]:
    """The recipe against its template's parameters as ``validate`` checks it (a published
    recipe may come from an older amiforge or a hand-written store): BuildFailed naming
    every problem; else the capabilities CreateStack needs (``needs``, from
    ValidateTemplate: IAM resources), allowed only when the stack allows build-template
    IAM."""
    path = recipe.build.cloudformation
    if "BaseImageId" not in declared:
        raise BuildFailed(f"{path}: the build template must declare the parameter "
                          "BaseImageId (the base AMI amiforge resolved)")
    boundary = env.build_role_boundary_arn is not None
    problems = [f"{field}: {message}" for field, message in
                recipe_problems(recipe, declared, boundary=boundary, check_values=False)]
    if needs and not boundary:
        problems.append(f"{path} creates IAM resources ({', '.join(needs)}), which this "
                        "stack does not allow build templates: deploy it with "
                        "-p BuildTemplateIam=enabled")
    if problems:
        raise BuildFailed("; ".join(problems))
    return IAM_CAPABILITIES if needs else ()


def _check_groups(recipe: Recipe, env: StepEnv) -> None:
    """The recipe's own security groups must carry this stack's tag: the build stack's role
    launches only into this stack's groups (never a VPC's default group), so say so here
    rather than let the stack fail with AccessDenied."""
    wanted = recipe.build.security_group_ids
    if not wanted:
        return
    tags = ec2_api.security_group_tags(env.client("ec2"), wanted)
    problems = [f"security group {group} {_group_problem(tags.get(group), env.stack_name)}"
                for group in wanted if tags.get(group, {}).get(STACK) != env.stack_name]
    if problems:
        raise BuildFailed("build.security_group_ids: " + "; ".join(problems))


def _group_problem(tags: dict[str, str] | None, stack: str) -> str:
    if tags is None:
        return "does not exist in this region; name groups of the build's region"
    return (f"does not carry the tag {STACK}={stack}: a build template's instance may join "
            f"only this stack's groups; tag it (aws ec2 create-tags --resources GROUP "
            f"--tags Key={STACK},Value={stack}) or remove it from the recipe")


def _template_source(template: str, env: StepEnv) -> tuple[str | None, str | None]:
    """(the text, None) when CloudFormation takes the template inline; else it is put in
    the artifact bucket under its content hash: (None, its URL)."""
    data = template.encode("utf-8")
    if len(data) <= INLINE_TEMPLATE_MAX:
        return template, None
    if not (env.artifact_bucket and env.account_id):
        raise BuildFailed(f"the build template is {len(data):,} bytes, over CloudFormation's "
                          f"inline limit of {INLINE_TEMPLATE_MAX:,}, and this function has no "
                          "artifact bucket to pass it from (AMIFORGE_ARTIFACT_BUCKET and "
                          "AMIFORGE_ACCOUNT_ID): redeploy the stack")
    key = f"{TEMPLATE_PREFIX}{hashlib.sha256(data).hexdigest()}.template"
    artifacts.put_object(env.client("s3"), bucket=env.artifact_bucket, owner=env.account_id,
                         key=key, data=data)
    return None, artifacts.object_url(env.artifact_bucket, env.region, key)


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
