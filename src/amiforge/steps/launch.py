"""Step Launch: start the build instance (idempotent per build and attempt).

A recipe with build.files gets its files through presigned URLs (core/assets.py): Launch
checks each file is in the artifact bucket, presigns a GET URL per file, writes their
list for this launch and puts one presigned URL to that list in the wrapper. The URLs
expire after an hour; a relaunch (retry) makes new ones.

Network and role, in order of precedence: the recipe's subnet/groups, else the stack's
DefaultSecurityGroupIds (and BuilderSubnetId), else the stack's no-inbound builder group;
the recipe's instance_profile (re-checked here against AllowedInstanceProfiles: the
stack may have been redeployed since publish), else BuilderInstanceProfileArn, else none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws.assets import AssetBucket
from amiforge.aws.pacing import Pacer
from amiforge.core.assets import (
    builder_manifest,
    check_instance_profile,
    launch_key,
    object_key,
)
from amiforge.core.model import Recipe
from amiforge.core.tags import ATTEMPT, BUILD_ID, builder_tags
from amiforge.core.userdata import USER_DATA_LIMIT, user_data_size
from amiforge.errors import OperationFailed
from amiforge.steps.build_inputs import common_tags, load_recipe
from amiforge.steps.env import StepEnv


def builder_groups(recipe_groups: Sequence[str], env: StepEnv) -> tuple[str, ...]:
    """The recipe's own groups, else the stack's no-inbound builder group.

    Never none: without SecurityGroupIds EC2 puts the builder in the VPC's default group,
    which lets every other member of that group in.
    """
    if recipe_groups:
        return tuple(recipe_groups)
    if env.default_security_group_ids:
        return env.default_security_group_ids
    if not env.builder_security_group_id:
        raise OperationFailed("the stack has no builder security group "
                              "(AMIFORGE_BUILDER_SECURITY_GROUP is not set) and the recipe "
                              "names no build.security_group_ids: refusing to launch into "
                              "the VPC's default group", hint="redeploy with `amiforge deploy`")
    return (env.builder_security_group_id,)


def builder_subnet(recipe_subnet: str | None, recipe_groups: Sequence[str],
                   env: StepEnv) -> str | None:
    """The recipe's subnet; else, for a builder in the stack's group, the stack's subnet
    (BuilderSubnetId, in that group's VPC); else None (the default VPC's subnets).

    A recipe that names its own groups but no subnet keeps EC2's default subnet: its
    groups decide the VPC, not the stack's."""
    if recipe_subnet:
        return recipe_subnet
    if recipe_groups:
        return None
    return env.builder_subnet_id


def instance_profile(recipe: Recipe, env: StepEnv) -> str | None:
    """The recipe's instance profile if the stack (still) allows it; OperationFailed if not."""
    name = recipe.build.instance_profile
    if name is None:
        return None
    refused = check_instance_profile(name, env.allowed_instance_profiles)
    if refused:
        raise OperationFailed(f"{recipe.source}: build.instance_profile: {refused}")
    return name


def stage_assets(recipe: Recipe, env: StepEnv, build_id: str, attempt: int) -> str | None:
    """The presigned URL of this launch's list of build.files URLs (None without files)."""
    if not recipe.assets:
        return None
    if not env.artifact_bucket:
        raise OperationFailed("the stack has no artifact bucket (AMIFORGE_ARTIFACT_BUCKET "
                              f"is not set) for the build.files of recipe {recipe.name!r}",
                              hint="redeploy with `amiforge deploy`")
    bucket = AssetBucket(env.client("s3"), env.artifact_bucket, env.account_id)
    missing = [a.path for a in recipe.assets if not bucket.holds(a)]
    if missing:
        raise OperationFailed(f"recipe {recipe.name!r}: build.files {', '.join(missing[:5])} "
                              f"{'is' if len(missing) == 1 else 'are'} not in the artifact "
                              f"bucket {env.artifact_bucket}",
                              hint="run `amiforge publish` again from the recipe directory")
    urls = {a.path: bucket.presign(object_key(a.sha256)) for a in recipe.assets}
    key = launch_key(build_id, attempt)
    bucket.put_text(key, builder_manifest(recipe.assets, urls))
    return bucket.presign(key)


def builder_user_data(recipe: Recipe, assets_url: str | None) -> str:
    user_data = recipe.user_data(assets_url)
    size = user_data_size(user_data)
    if size > USER_DATA_LIMIT:  # a presigned URL longer than validation left room for
        raise OperationFailed(f"recipe {recipe.name!r}: the wrapped user data with its "
                              f"build.files URL is {size} bytes, over EC2's limit of "
                              f"{USER_DATA_LIMIT}", hint="shorten the script (build.user_data)")
    return user_data


def launch(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    build = state["build"]
    attempt = int(state.get("launch", {}).get("attempt", 0)) + 1
    ec2 = env.client("ec2")
    # A retried Launch (Lambda timeout, throttled response lost) must not start a second
    # instance: an instance already tagged for this build and attempt is reused.
    existing = ec2_api.instances_tagged(ec2, {BUILD_ID: build["build_id"], ATTEMPT: str(attempt)})
    if existing:
        instance = existing[0]
        return {"instance_id": instance["InstanceId"],
                "instance_type": instance["InstanceType"], "attempt": attempt}
    recipe = load_recipe(env, build)
    profile = instance_profile(recipe, env)
    user_data = builder_user_data(recipe, stage_assets(recipe, env, build["build_id"], attempt))
    # Every RunInstances request (fallback types and SDK retries too) takes a slot of
    # amiforge's launch budget first; an empty budget raises LaunchThrottled, retried.
    pacer = Pacer(env.client("dynamodb"), env.catalog_table, burst=env.launch_burst,
                  per_second=env.launch_per_second)
    pacer.install(ec2)
    request = ec2_api.LaunchRequest(
        image_id=build["base_ami"],
        root_device_name=build["root_device"],
        instance_types=tuple(recipe.build.instance_types),
        user_data=user_data,
        tags=builder_tags(common_tags(build, env), attempt=attempt,
                          user_tags=recipe.build.tags),
        client_token=f"{build['build_id']}-{attempt}",
        subnet_id=builder_subnet(recipe.build.subnet_id, recipe.build.security_group_ids, env),
        security_group_ids=builder_groups(recipe.build.security_group_ids, env),
        volume_size_gb=max(recipe.build.volume_size_gb or 0, int(build.get("root_volume_gb", 8))),
        kms_key_id=recipe.image.kms_key_id,
        instance_profile_arn=env.instance_profile_arn,
        instance_profile_name=profile,
        associate_public_ip=recipe.build.associate_public_ip,
    )
    instance_id, instance_type, capacity_errors = ec2_api.run_builder(ec2, request)
    env.catalog.update(build["recipe"], build["build_id"], instance_id=instance_id,
                       instance_type=instance_type, launches=attempt)
    return {"instance_id": instance_id, "instance_type": instance_type, "attempt": attempt,
            "capacity_errors": capacity_errors, "paced_seconds": round(pacer.waited, 3)}
