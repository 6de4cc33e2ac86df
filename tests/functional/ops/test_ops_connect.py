"""connect(): the CLI side's StepEnv carries the stack's parameters (timeouts, polling,
launch budget), as the stack's functions do, not StepEnv's defaults; ``amiforge sweep``
and ``prune`` run with it."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from amiforge.aws.session import AwsContext
from amiforge.cli.main import cli
from amiforge.deploy import stack as stack_api
from amiforge.ops import connect as connect_module
from amiforge.ops.connect import connect
from amiforge.ops.demo import LOCAL_STACK_PARAMETERS
from amiforge.steps.env import StepEnv
from amiforge.steps.prune import prune
from amiforge.steps.sweep import sweep

STACK = "amiforge-connect"
PARAMETERS = {**LOCAL_STACK_PARAMETERS, "ImageTimeoutMinutes": "17", "LaunchBurst": "2",
              "LaunchesPerSecond": "0.5", "BaseParameterPrefixes": "/golden/amis/,/vendor/"}


@pytest.fixture(scope="module")
def aws(local_cloud: Any) -> AwsContext:
    aws = AwsContext(region=local_cloud.region, endpoint_url=local_cloud.endpoint)
    stack_api.deploy(aws, STACK, PARAMETERS)
    return aws


def test_connect_reads_the_stacks_parameters(aws: AwsContext) -> None:
    env = connect(aws, STACK)
    outputs = stack_api.stack_outputs(aws, STACK)
    assert (env.seconds_per_minute, env.poll_seconds, env.image_timeout_minutes) == (1, 1, 17)
    assert (env.launch_burst, env.launch_per_second) == (2, 0.5)
    assert env.instance_profile_arn is None  # BuilderInstanceProfileArn left empty
    assert env.base_parameter_prefixes == ("/golden/amis/", "/vendor/")
    assert (env.catalog_table, env.recipes_table, env.state_machine_arn, env.topic_arn,
            env.cleanup_queue_url) == (
        outputs["CatalogTableName"], outputs["RecipesTableName"], outputs["StateMachineArn"],
        outputs["NotificationsTopicArn"], outputs["CleanupQueueUrl"])
    assert env.aws is aws
    env.catalog.all_builds()  # the tables are the stack's


@pytest.mark.parametrize("command", ["sweep", "prune"])
def test_sweep_and_prune_run_with_the_stacks_timing(aws: AwsContext, local_cloud: Any,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    command: str) -> None:
    seen: list[StepEnv] = []
    real = {"sweep": sweep, "prune": prune}[command]

    def spy(event: dict, env: StepEnv) -> dict:
        seen.append(env)
        return real(event, env)

    monkeypatch.setattr(f"amiforge.ops.cleanup.run_{command}", spy)
    result = CliRunner().invoke(cli, ["--endpoint-url", local_cloud.endpoint, "--region",
                                      local_cloud.region, "--stack", STACK, command,
                                      "--dry-run"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (env,) = seen
    assert (env.seconds_per_minute, env.image_timeout_minutes, env.poll_seconds) == (1, 17, 1)


def test_a_stack_reporting_no_parameters_keeps_the_templates_defaults(
        aws: AwsContext, monkeypatch: pytest.MonkeyPatch) -> None:
    described = stack_api.describe_stack(aws, STACK)
    assert described is not None
    monkeypatch.setattr(connect_module, "describe_stack", lambda _aws, _stack: {
        k: v for k, v in described.items() if k != "Parameters"})
    env = connect(aws, STACK)
    defaults = StepEnv(catalog_table="", recipes_table="")
    assert (env.seconds_per_minute, env.poll_seconds, env.image_timeout_minutes,
            env.launch_burst, env.launch_per_second) == (
        defaults.seconds_per_minute, defaults.poll_seconds, defaults.image_timeout_minutes,
        defaults.launch_burst, defaults.launch_per_second)
