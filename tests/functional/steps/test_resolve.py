"""Resolve pins what the build is made of: the recipe version and the base image, both
named in the execution state and the catalog record, so every later step (and every
retry) builds exactly that. On the local cloud: real tables, SSM's public AL2023
parameter and the EC2 image it names."""

from __future__ import annotations

from typing import Any

import pytest
from tests.helpers import (
    AL2023,
    COPY,
    HOME,
    Publish,
    build_id_of,
    publish_recipe,
    resolved,
    write_recipe,
)

from amiforge.core.hashing import build_key
from amiforge.errors import NotFound
from amiforge.steps.env import StepEnv
from amiforge.steps.resolve import resolve, resolve_and_launch


def test_resolve_pins_the_published_hash_and_the_current_base(env: StepEnv,
                                                             published: Publish) -> None:
    recipe = published()
    base = env.client("ssm").get_parameter(Name=AL2023)["Parameter"]["Value"]

    state = resolved(env, recipe)

    build = state["build"]
    assert (build["recipe_hash"], build["base_ami"]) == (recipe.hash, base)
    assert build["build_key"] == build_key(recipe.name, recipe.hash, base)
    assert build["root_volume_gb"] >= 8 and build["root_device"] == "/dev/xvda"
    # The recipe's 45 minutes at the stack's 1 s per minute; stacks polled every second.
    # release.approval_timeout_hours (72 by default), in the stack's scaled seconds; the
    # image may stay pending for ImageTimeoutMinutes (AwaitImage's task timeout).
    assert state["timing"] == {"timeout_seconds": 45, "poll_seconds": 1, "max_image_polls": 5,
                               "approval_timeout_seconds": 72 * 60 * env.seconds_per_minute,
                               "image_timeout_seconds": 5}
    record = env.catalog.get(recipe.name, build["build_id"])
    assert record is not None
    assert (record["status"], record["recipe_hash"], record["base_ami"]) == (
        "BUILDING", recipe.hash, base)
    assert record["execution_arn"].endswith(build["build_id"])


def test_a_pinned_hash_and_base_win_over_what_is_current(env: StepEnv, published: Publish,
                                                        recipe_dir: Any,
                                                        local_cloud: Any) -> None:
    first = published()
    second = write_recipe(recipe_dir / "v2", first.name, "echo changed\n")
    publish_recipe(env, second)  # now the current version
    older_base = local_cloud.release_base(f"{first.name}-old", owner="amazon")

    build = resolved(env, first, recipe_hash=first.hash, base_ami=older_base)["build"]

    assert (build["recipe_hash"], build["base_ami"]) == (first.hash, older_base)
    assert resolved(env, first)["build"]["recipe_hash"] == second.hash


def test_a_retried_resolve_keeps_one_record(env: StepEnv, published: Publish) -> None:
    recipe = published()
    event = {"input": {"recipe": recipe.name}, "build_id": build_id_of(recipe.name)}
    first = resolve(event, env)
    again = resolve(event, env)
    assert again["build"] == first["build"]
    assert [b["build_id"] for b in env.catalog.history(recipe.name)] == [
        event["build_id"]]


def test_an_unpublished_recipe_is_not_found(env: StepEnv) -> None:
    with pytest.raises(NotFound, match=r"recipe 'ghost-recipe' is not published") as info:
        resolve({"input": {"recipe": "ghost-recipe"}, "build_id": "ghost-recipe-x"}, env)
    assert info.value.hint == "run `amiforge publish DIR`"


def test_a_base_image_that_does_not_exist_opens_no_record(env: StepEnv,
                                                         published: Publish) -> None:
    recipe = published()
    event = {"input": {"recipe": recipe.name, "base_ami": "ami-0000000000000dead"},
             "build_id": build_id_of(recipe.name)}
    with pytest.raises(NotFound, match="base image ami-0000000000000dead of recipe"):
        resolve(event, env)
    assert env.catalog.history(recipe.name) == []


def test_an_unknown_pinned_version_is_not_found(env: StepEnv, published: Publish) -> None:
    recipe = published()
    with pytest.raises(NotFound, match="is not published"):
        resolve({"input": {"recipe": recipe.name, "recipe_hash": "ab" * 32},
                 "build_id": build_id_of(recipe.name)}, env)


def test_resolve_tells_the_choices_whether_a_test_and_copies_follow(
        env: StepEnv, published: Publish) -> None:
    """The Test? and Copies? choices skip LaunchTester and Distribute on these flags:
    each is true exactly when that step would have something to do."""
    plain = resolved(env, published())["build"]
    assert (plain["tests"], plain["copies"]) == (False, False)
    home_only = resolved(env, published(image=f"regions: [{HOME}]\n"))["build"]
    assert (home_only["tests"], home_only["copies"]) == (False, False)
    both = published(image=f"regions: [{HOME}, {COPY}]\n",
                     extra="test:\n  script: |\n    echo ok\n")
    build = resolved(env, both)["build"]
    assert (build["tests"], build["copies"]) == (True, True)
    # Routing only: the catalog record does not keep them.
    record = env.catalog.get(both.name, build["build_id"])
    assert record is not None and "tests" not in record and "copies" not in record


def _start(recipe: Any) -> dict[str, Any]:
    build_id = build_id_of(recipe.name)
    return {"input": {"recipe": recipe.name, "trigger": "manual"}, "build_id": build_id,
            "execution_arn": f"arn:aws:states:{HOME}:123456789012:execution:m:{build_id}"}


def test_resolve_launches_the_first_builder_in_the_same_invocation(
        env: StepEnv, published: Publish) -> None:
    recipe = published()

    state = resolve_and_launch(_start(recipe), env)

    launch = state["launch"]
    assert launch["attempt"] == 1
    tags = {t["Key"]: t["Value"] for t in env.client("ec2").describe_instances(
        InstanceIds=[launch["instance_id"]])["Reservations"][0]["Instances"][0]["Tags"]}
    assert tags["amiforge:build-id"] == state["build"]["build_id"]
    record = env.catalog.get(recipe.name, state["build"]["build_id"])
    assert record is not None and record["instance_id"] == launch["instance_id"]


def test_a_launch_that_fails_in_resolve_is_left_to_the_launch_state(
        env: StepEnv, published: Publish, monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve's own work stands; the Launch state (its Retry, its Catch) launches."""
    from amiforge.errors import LaunchThrottled
    from amiforge.steps import resolve as resolve_step

    def throttled(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
        raise LaunchThrottled("the launch budget is empty")

    monkeypatch.setattr(resolve_step, "launch", throttled)
    recipe = published()

    state = resolve_and_launch(_start(recipe), env)

    assert "launch" not in state
    assert env.catalog.get(recipe.name, state["build"]["build_id"])["status"] == "BUILDING"


def test_a_cloudformation_builder_is_not_launched_by_resolve(
        env: StepEnv, published: Publish, monkeypatch: pytest.MonkeyPatch) -> None:
    from amiforge.steps import resolve as resolve_step

    recipe = published()
    monkeypatch.setattr(resolve_step, "resolve", lambda event, env: {
        "build": {"builder": "cloudformation"}, "timing": {}})
    monkeypatch.setattr(resolve_step, "launch", lambda state, env: pytest.fail("launched"))

    assert "launch" not in resolve_and_launch(_start(recipe), env)


def test_a_retried_resolve_keeps_what_the_first_attempt_pinned(
        env: StepEnv, published: Publish, recipe_dir: Any) -> None:
    """The first attempt launched a builder of its recipe version and base, then died:
    a newer version published in between must not be what the build says it built."""
    first = published()
    event = {"input": {"recipe": first.name}, "build_id": build_id_of(first.name)}
    pinned = resolve(event, env)["build"]
    second = write_recipe(recipe_dir / "v2", first.name, "echo changed\n")
    publish_recipe(env, second)  # now the current version

    again = resolve(event, env)["build"]

    assert (again["recipe_hash"], again["base_ami"]) == (first.hash, pinned["base_ami"])
    assert again == pinned
