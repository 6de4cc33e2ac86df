"""``release.launch_templates`` / ``release.instance_refresh``: parsed, hashed, refused
with the field named; and the rollout's pure decisions (which templates move, what a
refresh asks AWS for, what a refresh status means)."""

from __future__ import annotations

from typing import Any

import pytest

from amiforge.core.parse import recipe_from_document
from amiforge.core.rollout import (
    RefreshTarget,
    TemplateTarget,
    decide_template,
    overall,
    refresh_outcome,
    refresh_request,
    regions_of,
)

from ..conftest import RecipeDir

LT = "lt-0123456789abcdef0"


def test_rollout_entries_are_parsed_with_defaults_and_change_the_hash(
        recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid())
    (plain,) = recipe_dir.load()
    recipe_dir.recipe(recipe_dir.valid(release={
        "launch_templates": ["web-lt", {"launch_template": LT, "region": "eu-west-1",
                                        "adopt": True}],
        "instance_refresh": [{"auto_scaling_group": "web-asg", "min_healthy_percentage": 50,
                              "instance_warmup_seconds": 60, "checkpoints": [50, 100]}]}))
    (rolled,) = recipe_dir.load()
    release = rolled.release
    assert release.launch_templates == (TemplateTarget("web-lt"),
                                        TemplateTarget(LT, "eu-west-1", True))
    assert release.instance_refresh == (RefreshTarget("web-asg", None, 50, 60, (50, 100)),)
    assert release.rolls_out and not release.manual and rolled.hash != plain.hash
    again = recipe_from_document(rolled.to_document())
    assert again.release == release and again.hash == rolled.hash


def test_a_group_name_alone_takes_aws_defaults(recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid(release={"launch_templates": ["web-lt"],
                                                "instance_refresh": ["web-asg"]}))
    (recipe,) = recipe_dir.load()
    assert recipe.release.instance_refresh == (RefreshTarget("web-asg"),)
    # Defaults survive publishing: the document parses back to the same recipe.
    again = recipe_from_document(recipe.to_document())
    assert again.release == recipe.release and again.hash == recipe.hash


P = "release.launch_templates[0]"
R = "release.instance_refresh[0]"


@pytest.mark.parametrize("release, expected", [
    ({"launch_templates": "web-lt"},
     [("release.launch_templates", "must be a list, got 'web-lt'; write e.g. "
       "launch_templates: [web-lt] or [{launch_template: lt-0123456789abcdef0, region: "
       "eu-west-1, adopt: true}]")]),
    ({"launch_templates": ["x"]},
     [(f"{P}.launch_template", "'x' is not a launch template name (3-128 letters, digits "
       "and ( ) . - / _) or id (lt- and 17 hex digits)")]),
    ({"launch_templates": [{"launch_template": "web-lt", "adopt": "yes"}]},
     [(f"{P}.adopt", "must be true or false (unquoted), got 'yes'")]),
    ({"launch_templates": [{"launch_template": "web-lt", "region": "mars"}]},
     [(f"{P}.region", "'mars' is not an AWS region: expected a region name like eu-west-1 "
       "(see `aws ec2 describe-regions --all-regions`)")]),
    ({"launch_templates": [{"region": "eu-west-1"}]},
     [(f"{P}.launch_template", "is required")]),
    ({"launch_templates": [{"launch_template": "web-lt", "adpot": True}]},
     [(f"{P}.adpot", "unknown key; did you mean 'adopt'?")]),
    ({"launch_templates": ["web-lt", "web-lt"]},
     [("release.launch_templates[1]", "'web-lt' is listed twice")]),
    ({"launch_templates": ["web-lt"],
      "instance_refresh": [{"auto_scaling_group": "web", "min_healthy_percentage": 101}]},
     [(f"{R}.min_healthy_percentage", "is 101; use a whole number from 0 to 100")]),
    ({"launch_templates": ["web-lt"],
      "instance_refresh": [{"auto_scaling_group": "web", "checkpoints": [50, 20]}]},
     [(f"{R}.checkpoints", "[50, 20] must rise strictly, each from 1 to 100 (AWS pauses "
       "the refresh at each); write e.g. [20, 50, 100]")]),
    ({"launch_templates": ["web-lt"],
      "instance_refresh": [{"auto_scaling_group": "web", "checkpoints": "50"}]},
     [(f"{R}.checkpoints", "must be a list of whole percentages, got '50'; write e.g. "
       "[20, 50, 100]")]),
    ({"launch_templates": ["web-lt"],
      "instance_refresh": [{"auto_scaling_group": "web", "instance_warmup_seconds": -1}]},
     [(f"{R}.instance_warmup_seconds", "is -1; use a whole number from 0 to 3600")]),
    ({"launch_templates": ["web-lt"], "instance_refresh": [{"auto_scaling_group": "a:b*"}]},
     [(f"{R}.auto_scaling_group", "'a:b*' is not an Auto Scaling group name amiforge "
       "accepts (letters, digits, and . _ @ + = - and spaces; at most 255)")]),
    ({"instance_refresh": ["web-asg"]},
     [("release.instance_refresh", "needs release.launch_templates: a refresh rolls a group "
       "onto the launch template version amiforge made; list the group's template there")]),
])
def test_bad_rollout_entries_are_refused_naming_the_field(
        recipe_dir: RecipeDir, release: dict[str, Any],
        expected: list[tuple[str, str]]) -> None:
    recipe_dir.recipe(recipe_dir.valid(release=release))
    assert [(f, m) for _w, f, m in recipe_dir.problems()] == expected


OK = {"template_tags": {"amiforge:rollout": "st"}, "stack": "st"}


def test_only_this_recipes_templates_move_unless_adopted() -> None:
    ours = {"amiforge:recipe": "web"}
    moved = decide_template(TemplateTarget("t"), recipe="web", new_image="ami-new",
                            default_image="ami-old", default_image_tags=ours, **OK)
    assert moved.move and "ami-old, an image of recipe web" in moved.reason
    other = decide_template(TemplateTarget("t"), recipe="web", new_image="ami-new",
                            default_image="ami-x", default_image_tags={"amiforge:recipe": "db"}, **OK)
    assert not other.move and "an image of recipe db" in other.reason
    assert "set adopt: true" in other.reason
    foreign = decide_template(TemplateTarget("t"), recipe="web", new_image="ami-new",
                              default_image="ami-base", default_image_tags=None, **OK)
    assert not foreign.move and "did not build for this recipe" in foreign.reason
    adopted = decide_template(TemplateTarget("t", adopt=True), recipe="web",
                              new_image="ami-new", default_image="ami-base",
                              default_image_tags={}, **OK)
    assert adopted.move and adopted.reason.startswith("adopt: true")
    done = decide_template(TemplateTarget("t", adopt=True), recipe="web", new_image="ami-new",
                           default_image="ami-new", default_image_tags=ours, **OK)
    assert not done.move and "already runs ami-new" in done.reason
    resolved = decide_template(TemplateTarget("t"), recipe="web", new_image="ami-new",
                               default_image="resolve:ssm:/amiforge/web/latest",
                               default_image_tags=None, **OK)
    assert resolved.move
    for tags in ({}, {"amiforge:rollout": "other-stack"}):
        refused = decide_template(TemplateTarget("t", adopt=True), recipe="web",
                                  new_image="ami-new", default_image="ami-old",
                                  default_image_tags=ours, template_tags=tags, stack="st")
        assert not refused.move
        assert refused.reason == ("it is not tagged amiforge:rollout=st: tag it so to let "
                                  "this stack roll it out")


def test_a_refresh_request_pins_the_new_version_with_auto_rollback() -> None:
    request = refresh_request(RefreshTarget("web-asg", None, 50, 30, (50, 100)),
                              template_id=LT, version=3)
    assert request == {
        "AutoScalingGroupName": "web-asg", "Strategy": "Rolling",
        "DesiredConfiguration": {"LaunchTemplate": {"LaunchTemplateId": LT, "Version": "3"}},
        "Preferences": {"MinHealthyPercentage": 50, "AutoRollback": True,
                        "InstanceWarmup": 30, "CheckpointPercentages": [50, 100]}}
    bare = refresh_request(RefreshTarget("g"), template_id=LT, version=1)
    assert bare["Preferences"] == {"MinHealthyPercentage": 90, "AutoRollback": True}


@pytest.mark.parametrize("status, outcome", [
    ("Successful", "succeeded"), ("Failed", "failed"), ("Cancelled", "failed"),
    ("RollbackSuccessful", "failed"), ("RollbackFailed", "failed"),
    ("InProgress", "running"), ("Pending", "running"), ("RollbackInProgress", "running"),
    (None, "running")])
def test_refresh_statuses_read_as_outcomes(status: str | None, outcome: str) -> None:
    assert refresh_outcome(status) == outcome


def test_overall_outcome_and_regions() -> None:
    assert overall([]) == "succeeded"
    assert overall(["succeeded", "running"]) == "running"
    assert overall(["running", "failed"]) == "failed"
    images = {"us-east-1": "ami-a", "eu-west-1": "ami-b"}
    assert regions_of(None, images) == ["eu-west-1", "us-east-1"]
    assert regions_of("eu-west-1", images) == ["eu-west-1"]
    assert regions_of("ap-south-1", images) == []
