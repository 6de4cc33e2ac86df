"""Which security groups a builder joins, and the stack tag on what a build creates."""

from __future__ import annotations

import pytest

from amiforge.core.tags import STACK, build_tags, image_tags
from amiforge.errors import OperationFailed
from amiforge.steps.build_inputs import common_tags
from amiforge.steps.env import StepEnv
from amiforge.steps.launch import builder_groups

BUILD = {"recipe": "web", "build_id": "web-1", "recipe_hash": "ab" * 32,
         "base_ami": "ami-0123456789abcdef0"}


def env(**kwargs: str) -> StepEnv:
    return StepEnv(catalog_table="", recipes_table="", **kwargs)  # type: ignore[arg-type]


def test_the_recipe_s_groups_win_else_the_stack_s_group() -> None:
    stack = env(builder_security_group_id="sg-0123456789abcdef0")
    assert builder_groups(["sg-00000000000000001"], stack) == ("sg-00000000000000001",)
    assert builder_groups([], stack) == ("sg-0123456789abcdef0",)


def test_no_group_at_all_refuses_rather_than_join_the_default_group() -> None:
    with pytest.raises(OperationFailed, match="default group"):
        builder_groups([], env())


def test_the_stack_name_is_on_every_tag_set_and_cannot_be_overridden() -> None:
    tags = common_tags(BUILD, env(stack_name="prod-factory"))
    assert tags[STACK] == "prod-factory"
    assert image_tags(tags, {STACK: "other", "team": "web"})[STACK] == "prod-factory"


def test_nothing_is_tagged_without_the_stack_name() -> None:
    with pytest.raises(OperationFailed, match="AMIFORGE_STACK_NAME"):
        common_tags(BUILD, env())
    with pytest.raises(ValueError):
        build_tags(recipe="web", build_id="b", recipe_hash="h", base_ami="ami-1",
                   git_commit=None, stack="")


def test_the_environment_carries_the_stack_name_and_group() -> None:
    loaded = StepEnv.from_environ({"AMIFORGE_STACK_NAME": "s1",
                                   "AMIFORGE_BUILDER_SECURITY_GROUP": "sg-0123456789abcdef0"})
    assert (loaded.stack_name, loaded.builder_security_group_id) == (
        "s1", "sg-0123456789abcdef0")


def test_the_stack_s_subnet_goes_with_the_stack_s_group() -> None:
    from amiforge.steps.launch import builder_subnet

    stack = env(builder_security_group_id="sg-0123456789abcdef0",
                builder_subnet_id="subnet-0123456789abcdef0")
    assert builder_subnet("subnet-00000000000000001", [], stack) == "subnet-00000000000000001"
    assert builder_subnet(None, [], stack) == "subnet-0123456789abcdef0"
    # The recipe's own groups pick their own VPC: EC2's default subnet, not the stack's.
    assert builder_subnet(None, ["sg-00000000000000001"], stack) is None
    assert builder_subnet(None, [], env(builder_security_group_id="sg-0123456789abcdef0")) \
        is None


def test_the_stack_s_vpc_needs_its_subnet() -> None:
    from cfnlint.decode.cfn_yaml import loads

    from amiforge.deploy.stack import template_text

    rule = loads(template_text())["Rules"]["BuilderVpcNeedsItsSubnet"]
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [
        {"Ref": "BuilderSubnetId"}, ""]}]}
