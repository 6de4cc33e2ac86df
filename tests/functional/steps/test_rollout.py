"""RollOut and AwaitRefresh on the local cloud: the recipe's launch template gets a new
default version running the new image (everything else copied), the catalog records the
version made, the group is refreshed onto it; templates that are not this recipe's, or
not tagged for the stack, are skipped with the reason; a build that does not name
`latest` rolls nothing out."""

from __future__ import annotations

from tests.functional.steps.rollout_fixtures import (
    awaited,
    consumer_group,
    consumer_template,
    default_of,
    group_images,
    registered,
    rollout_recipe,
)
from tests.helpers import Publish, unique

from amiforge.steps.env import StepEnv
from amiforge.steps.rollout import roll_out


def test_the_template_moves_and_the_group_is_refreshed_onto_it(
        env: StepEnv, published: Publish) -> None:
    template_name, group = unique("lt"), unique("asg")
    recipe = rollout_recipe(published, template_name, group)
    old = registered(env, recipe)["result"]["image_id"]
    _, template_id = consumer_template(env, old, name=template_name)
    consumer_group(env, template_id, name=group)
    second = registered(env, recipe)
    new = second["result"]["image_id"]

    rollout = roll_out(second, env)

    assert rollout["outcome"] == "running" and rollout["skipped"] == []
    [moved] = rollout["templates"]
    assert (moved["template_id"], moved["version"], moved["previous_version"],
            moved["image_id"], moved["previous_image_id"]) == (template_id, 2, 1, new, old)
    assert default_of(env, template_id) == (2, new)
    data = env.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=template_id, Versions=["2"])["LaunchTemplateVersions"][0]
    assert data["LaunchTemplateData"]["InstanceType"] == "t3.micro"  # copied
    [refresh] = rollout["refreshes"]
    assert refresh["auto_scaling_group"] == group
    assert group_images(env, group) == {old}  # not replaced yet

    second["rollout"] = rollout
    done = awaited(env, second)

    assert done["outcome"] == "succeeded"
    assert group_images(env, group) == {new}
    record = env.catalog.get(recipe.name, second["build"]["build_id"])
    assert record["rollout"]["outcome"] == "succeeded"
    assert record["rollout"]["templates"][0]["version"] == 2


def test_templates_not_this_recipes_or_not_tagged_are_skipped_with_the_reason(
        env: StepEnv, published: Publish) -> None:
    foreign = env.client("ec2").register_image(Name=unique("base"),
                                               RootDeviceName="/dev/xvda")["ImageId"]
    name, template_id = consumer_template(env, foreign)
    recipe = rollout_recipe(published, name)
    state = registered(env, recipe)

    rollout = roll_out(state, env)

    assert rollout["outcome"] == "succeeded" and rollout["templates"] == []
    [skipped] = rollout["skipped"]
    assert skipped["what"] == f"launch template {name}"
    assert "an image amiforge did not build for this recipe" in skipped["reason"]
    assert default_of(env, template_id) == (1, foreign)
    record = env.catalog.get(recipe.name, state["build"]["build_id"])
    assert record["rollout"]["skipped"] == [skipped]

    # adopt: true takes it over.
    adopted = registered(env, rollout_recipe(published, name, adopt=True))
    assert [m["template_id"] for m in roll_out(adopted, env)["templates"]] == [template_id]
    assert default_of(env, template_id) == (2, adopted["result"]["image_id"])

    # Not tagged for this stack: never touched, whatever the recipe says.
    untagged, untagged_id = consumer_template(env, foreign, tagged=False)
    state = registered(env, rollout_recipe(published, untagged, adopt=True))
    [skipped] = roll_out(state, env)["skipped"]
    assert skipped["reason"].startswith(f"it is not tagged amiforge:rollout={env.stack_name}")
    assert default_of(env, untagged_id) == (1, foreign)


def test_a_build_that_does_not_name_latest_rolls_nothing_out(
        env: StepEnv, published: Publish) -> None:
    name = unique("lt")
    recipe = rollout_recipe(published, name)
    state = registered(env, recipe)
    _, template_id = consumer_template(env, state["result"]["image_id"], name=name)
    late = {**state, "result": {**state["result"], "latest": "newer build b names latest"}}
    rollout = roll_out(late, env)
    assert rollout["templates"] == [] and rollout["outcome"] == "succeeded"
    assert "does not name latest" in rollout["skipped"][0]["reason"]
    assert default_of(env, template_id)[0] == 1
