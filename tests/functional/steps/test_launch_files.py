"""Launch with build.files, build.instance_profile and the stack's default groups, on the
local cloud: publish uploads the files; the builder, with no instance profile, fetches
them through presigned URLs (the simulator really downloads them from the local S3 and
checks them); a recipe's profile must be one the stack allows; the stack's
DefaultSecurityGroupIds replace its builder group, and a recipe's own groups win."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import resolved, unique, wait_for, wait_state, write_recipe

from amiforge.aws.ec2 import console_output
from amiforge.core.assets import object_key
from amiforge.core.model import Recipe
from amiforge.errors import OperationFailed
from amiforge.ops.publish import publish
from amiforge.steps.env import StepEnv
from amiforge.steps.launch import launch


@pytest.fixture
def files_env(env: StepEnv) -> StepEnv:
    s3 = env.client("s3")
    bucket = unique("artifacts")
    s3.create_bucket(Bucket=bucket)
    return dataclasses.replace(env, artifact_bucket=bucket)


def recipe_with_files(tmp_path: Path, motd: str, script: str, build: str = "") -> Recipe:
    name = unique("files")
    (tmp_path / name / "files").mkdir(parents=True)
    (tmp_path / name / "files" / "motd").write_text(motd)
    return write_recipe(tmp_path, name, script, build="files: [files]\n" + build)


def console(env: StepEnv, instance_id: str) -> str:
    return console_output(env.client("ec2"), instance_id)


def finished_console(env: StepEnv, instance_id: str) -> str:
    wait_state(env, instance_id, "stopped")
    return wait_for(lambda: (c if "AMIFORGE-RESULT" in (c := console(env, instance_id))
                             else None), timeout=10, what="the builder's result")


def test_the_builder_fetches_its_files_without_an_instance_profile(
        files_env: StepEnv, tmp_path: Path) -> None:
    recipe = recipe_with_files(tmp_path, "welcome to the golden image\n",
                               "# amiforge-sim: require files/motd golden image\n")
    [published] = publish(files_env, [recipe], None)
    assert published["files_uploaded"] == 1
    stored = files_env.client("s3").get_object(
        Bucket=files_env.artifact_bucket, Key=object_key(recipe.assets[0].sha256))
    assert stored["Body"].read() == b"welcome to the golden image\n"

    result = launch(resolved(files_env, recipe), files_env)
    started = files_env.client("ec2").describe_instances(InstanceIds=[result["instance_id"]])[
        "Reservations"][0]["Instances"][0]
    assert "IamInstanceProfile" not in started
    text = finished_console(files_env, result["instance_id"])
    assert "fetched build.files" in text and "AMIFORGE-RESULT: success" in text


def test_a_file_without_the_expected_content_fails_the_build(files_env: StepEnv,
                                                             tmp_path: Path) -> None:
    recipe = recipe_with_files(tmp_path, "something else\n",
                               "# amiforge-sim: require files/motd golden image\n")
    publish(files_env, [recipe], None)
    result = launch(resolved(files_env, recipe), files_env)
    text = finished_console(files_env, result["instance_id"])
    assert "amiforge-sim: files/motd does not contain 'golden image'" in text
    assert "AMIFORGE-RESULT: failure exit=1" in text


def test_files_missing_from_the_bucket_launch_nothing(files_env: StepEnv,
                                                      tmp_path: Path) -> None:
    recipe = recipe_with_files(tmp_path, "x\n", "true\n")
    files_env.store.publish(recipe.name, recipe.hash, recipe.to_document(), None)  # no upload
    with pytest.raises(OperationFailed, match=r"build.files files/motd is not in the artifact "
                                              r"bucket") as info:
        launch(resolved(files_env, recipe), files_env)
    assert "amiforge publish" in str(info.value.hint)


def test_an_instance_profile_must_be_allowed_by_the_stack(files_env: StepEnv,
                                                          tmp_path: Path) -> None:
    profile = unique("web-builder")
    files_env.client("iam").create_instance_profile(InstanceProfileName=profile)
    recipe = write_recipe(tmp_path, unique("profiled"), build=f"instance_profile: {profile}\n")
    with pytest.raises(Exception, match="is not in the stack's AllowedInstanceProfiles"):
        publish(files_env, [recipe], None)
    allowed = dataclasses.replace(files_env, allowed_instance_profiles=(profile,))
    publish(allowed, [recipe], None)
    state = resolved(allowed, recipe)
    # Redeployed without it since publish: Launch checks again.
    with pytest.raises(OperationFailed, match="is not in the stack's AllowedInstanceProfiles"):
        launch(state, files_env)
    started = allowed.client("ec2").describe_instances(
        InstanceIds=[launch(state, allowed)["instance_id"]])["Reservations"][0]["Instances"][0]
    assert started["IamInstanceProfile"]["Arn"].endswith(f"instance-profile/{profile}")


def test_the_stack_s_default_groups_apply_unless_the_recipe_names_its_own(
        files_env: StepEnv, tmp_path: Path) -> None:
    ec2 = files_env.client("ec2")
    default = ec2.create_security_group(GroupName=unique("default"),
                                        Description="stack default")["GroupId"]
    own = ec2.create_security_group(GroupName=unique("own"), Description="recipe's")["GroupId"]
    stack = dataclasses.replace(files_env, default_security_group_ids=(default,))

    def groups_of(recipe: Recipe) -> list[str]:
        files_env.store.publish(recipe.name, recipe.hash, recipe.to_document(), None)
        instance_id = launch(resolved(stack, recipe), stack)["instance_id"]
        found: dict[str, Any] = ec2.describe_instances(InstanceIds=[instance_id])[
            "Reservations"][0]["Instances"][0]
        return [g["GroupId"] for g in found["SecurityGroups"]]
    assert groups_of(write_recipe(tmp_path, unique("plain"))) == [default]
    assert groups_of(write_recipe(tmp_path, unique("own"),
                                  build=f"security_group_ids: [{own}]\n")) == [own]
