"""StepEnv (``steps/env.py``): what a function reads from the variables the template sets,
and the same step code reaching the local cloud's tables through it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.helpers import Publish, resolved

from amiforge.errors import InvalidInput
from amiforge.steps.env import StepEnv


def test_from_environ_reads_the_stacks_variables(env: StepEnv, published: Publish) -> None:
    recipe = published()
    build_id = resolved(env, recipe)["build"]["build_id"]
    environ = {
        "AMIFORGE_CATALOG_TABLE": env.catalog_table,
        "AMIFORGE_RECIPES_TABLE": env.recipes_table,
        "AMIFORGE_STACK_NAME": "prod-factory", "AMIFORGE_SECONDS_PER_MINUTE": "1",
        "AMIFORGE_POLL_SECONDS": "2", "AMIFORGE_LAUNCH_BURST": "3",
        "AMIFORGE_LAUNCHES_PER_SECOND": "0.5", "AMIFORGE_DETECT_SCHEDULE": "rate(2 hours)",
        "AMIFORGE_BASE_PARAMETER_PREFIXES": "/golden/,/team/",
        "AMIFORGE_TOPIC_ARN": "", "AMIFORGE_BUILDER_SECURITY_GROUP": "sg-0123456789abcdef0",
    }
    from_env = StepEnv.from_environ(environ)

    assert (from_env.stack_name, from_env.seconds_per_minute, from_env.poll_seconds) == (
        "prod-factory", 1, 2)
    assert (from_env.launch_burst, from_env.launch_per_second) == (3, 0.5)
    assert from_env.base_parameter_prefixes == ("/golden/", "/team/")
    assert from_env.topic_arn is None  # empty means unset
    assert from_env.builder_security_group_id == "sg-0123456789abcdef0"
    assert from_env.detect_period == timedelta(hours=2)
    assert from_env.region == "us-east-1"
    # The same tables, through the variables: the catalog and the store answer.
    assert from_env.catalog.get(recipe.name, build_id)["status"] == "BUILDING"
    assert from_env.store.current(recipe.name)["hash"] == recipe.hash


def test_defaults_are_aws_s_times() -> None:
    defaults = StepEnv.from_environ({})
    assert (defaults.seconds_per_minute, defaults.poll_seconds,
            defaults.image_timeout_minutes) == (60, 15, 240)
    assert defaults.base_parameter_prefixes == ()
    assert defaults.stack_name == "" and defaults.state_machine_arn is None


def test_a_bad_region_is_refused_naming_it() -> None:
    from amiforge.aws.session import AwsContext

    env = StepEnv(catalog_table="t", recipes_table="r", aws=AwsContext(region="mars-1"))
    with pytest.raises(InvalidInput, match="region 'mars-1' is not an AWS region name"):
        env.client("ec2")
