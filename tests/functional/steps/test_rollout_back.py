"""RollBackRelease on the local cloud: a refresh that AWS rolled back (the fault
directive) or a template that could not move takes the release back: the template's
default version is the one before, the build is REVOKED with the reason, `latest` names
the previous build's image again, and the outcome is recorded."""

from __future__ import annotations

import pytest
from tests.functional.steps.rollout_fixtures import (
    awaited,
    consumer_group,
    consumer_template,
    default_of,
    group_images,
    registered,
    rollout_recipe,
)
from tests.helpers import Publish, latest_value, unique

from amiforge.aws import launch_templates as lt_api
from amiforge.errors import AwsCallFailed
from amiforge.steps.env import StepEnv
from amiforge.steps.rollout import roll_out
from amiforge.steps.rollout_back import roll_back_release


def test_a_failed_refresh_rolls_the_template_and_latest_back(
        env: StepEnv, published: Publish) -> None:
    template, group = unique("web-lt"), unique("asg")
    recipe = rollout_recipe(published, template, group)
    first = registered(env, recipe)
    old = first["result"]["image_id"]
    _, template_id = consumer_template(env, old, name=template)
    consumer_group(env, template_id, "fail", name=group)
    second = registered(env, recipe)
    build_id = second["build"]["build_id"]
    assert latest_value(env, recipe.name) == second["result"]["image_id"]
    second["rollout"] = roll_out(second, env)
    done = awaited(env, second)
    assert done["outcome"] == "failed"
    assert done["reason"].startswith(f"instance refresh {done['refreshes'][0]['refresh_id']} "
                                     f"of Auto Scaling group {group} in us-east-1 ended "
                                     "RollbackSuccessful: the new instances failed")

    report = roll_back_release(second, env)

    assert report["revoked"] is True and report["reason"] == done["reason"]
    assert report["latest_build_id"] == first["build"]["build_id"]
    assert [t["reverted"] for t in report["templates"]] == [True]
    assert default_of(env, template_id) == (1, old)
    assert latest_value(env, recipe.name) == old
    assert group_images(env, group) == {old}
    record = env.catalog.get(recipe.name, build_id)
    assert record["status"] == "REVOKED"
    assert record["reason"] == f"rollout failed: {done['reason']}"
    assert record["rolled_back_to"] == first["build"]["build_id"]
    assert (record["rollout"]["outcome"], record["rollout"]["reason"]) == (
        "rolled_back", done["reason"])
    assert env.catalog.latest(recipe.name)["build_id"] == first["build"]["build_id"]


def test_a_template_that_cannot_move_puts_back_what_moved_and_the_rollback_follows(
        env: StepEnv, published: Publish, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = unique("web-lt"), unique("web-lt")
    recipe = published(extra=f"release:\n  launch_templates: [{a}, {b}]\n")
    first = registered(env, recipe)
    old = first["result"]["image_id"]
    _, a_id = consumer_template(env, old, name=a)
    _, b_id = consumer_template(env, old, name=b)
    second = registered(env, recipe)
    real = lt_api.set_default

    def refuse_b(ec2: object, template_id: str, version: int) -> None:
        if template_id == b_id and version == 2:
            raise AwsCallFailed("ModifyLaunchTemplate", "UnauthorizedOperation", "denied")
        real(ec2, template_id, version)

    monkeypatch.setattr(lt_api, "set_default", refuse_b)
    with pytest.raises(AwsCallFailed):
        roll_out(second, env)
    monkeypatch.undo()
    assert default_of(env, a_id) == (1, old)  # put back by RollOut itself
    error = {"Error": "AwsCallFailed", "Cause": "ModifyLaunchTemplate failed: denied"}

    report = roll_back_release({**second, "rollout_error": error}, env)

    assert report["reason"] == ("the rollout failed: AwsCallFailed: ModifyLaunchTemplate "
                                "failed: denied")
    assert report["revoked"] and latest_value(env, recipe.name) == old


def test_with_no_earlier_build_latest_is_kept_and_the_templates_go_back(
        env: StepEnv, published: Publish) -> None:
    template, group = unique("web-lt"), unique("asg")
    base = env.client("ec2").register_image(Name=unique("base"),
                                            RootDeviceName="/dev/xvda")["ImageId"]
    _, template_id = consumer_template(env, base, name=template)
    consumer_group(env, template_id, "fail", name=group)
    recipe = published(extra=f"release:\n  launch_templates: [{{launch_template: {template}, "
                             f"adopt: true}}]\n  instance_refresh: [{group}]\n")
    state = registered(env, recipe)
    state["rollout"] = roll_out(state, env)
    assert awaited(env, state)["outcome"] == "failed"

    report = roll_back_release(state, env)

    assert report["revoked"] is False
    assert report["latest"] == ("latest was kept: there is no earlier AVAILABLE build to go "
                                "back to")
    assert default_of(env, template_id) == (1, base)
    record = env.catalog.get(recipe.name, state["build"]["build_id"])
    assert record["status"] == "AVAILABLE" and record["rollout"]["outcome"] == "rolled_back"


def test_a_refresh_that_cannot_start_rolls_back_the_ones_started_and_the_templates(
        env: StepEnv, published: Publish, monkeypatch: pytest.MonkeyPatch) -> None:
    from amiforge.aws import autoscaling as asg_api

    template, one, two = unique("web-lt"), unique("asg"), unique("asg")
    recipe = published(extra=f"release:\n  launch_templates: [{template}]\n"
                             f"  instance_refresh: [{one}, {two}]\n")
    old = registered(env, recipe)["result"]["image_id"]
    _, template_id = consumer_template(env, old, name=template)
    consumer_group(env, template_id, "slow 30", name=one)
    consumer_group(env, template_id, name=two)
    second = registered(env, recipe)
    real = asg_api.start_refresh

    def refuse_two(autoscaling: object, request: dict) -> str:
        if request["AutoScalingGroupName"] == two:
            raise AwsCallFailed("StartInstanceRefresh", "AccessDenied", "denied")
        return real(autoscaling, request)

    monkeypatch.setattr(asg_api, "start_refresh", refuse_two)
    with pytest.raises(AwsCallFailed):
        roll_out(second, env)
    monkeypatch.undo()
    (first,) = asg_api.refreshes(env.client("autoscaling"), one)
    assert first.status == "RollbackSuccessful"
    assert default_of(env, template_id) == (1, old)
    assert group_images(env, one) == {old}
