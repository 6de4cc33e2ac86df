"""Find a deployed stack and build the StepEnv that points at its tables and machine.

The stack's functions read their StepEnv from environment variables that the template
fills from the stack's outputs and parameters. The CLI side reads the same values from
DescribeStacks (one call: it returns both) and builds the StepEnv with the same
:meth:`StepEnv.from_environ`, so ``amiforge sweep`` judges a build with the timeouts the
scheduled sweeper uses, not with defaults.

This is how the outside (the CLI, CI, tests) reaches a stack: it re-exports the two types
a caller holds, :class:`AwsContext` (where and as whom) and :class:`StepEnv` (the stack),
so that a command needs nothing below ``ops/``.
"""

from __future__ import annotations

from dataclasses import replace

from amiforge.aws.session import AwsContext
from amiforge.deploy.stack import describe_stack
from amiforge.errors import NotFound
from amiforge.steps.env import StepEnv

__all__ = ["OPTIONAL_OUTPUTS", "PARAMETERS", "REQUIRED_OUTPUTS", "AwsContext", "StepEnv",
           "connect"]

# Stack output -> the variable the template sets from the same resource.
REQUIRED_OUTPUTS = {
    "CatalogTableName": "AMIFORGE_CATALOG_TABLE",
    "RecipesTableName": "AMIFORGE_RECIPES_TABLE",
    "StateMachineArn": "AMIFORGE_STATE_MACHINE_ARN",
}
OPTIONAL_OUTPUTS = {
    "NotificationsTopicArn": "AMIFORGE_TOPIC_ARN",
    "CleanupQueueUrl": "AMIFORGE_CLEANUP_QUEUE_URL",
}
# Stack parameter -> the variable the template sets from it (`!Ref Parameter`).
PARAMETERS = {
    "SecondsPerMinute": "AMIFORGE_SECONDS_PER_MINUTE",
    "PollSeconds": "AMIFORGE_POLL_SECONDS",
    "ImageTimeoutMinutes": "AMIFORGE_IMAGE_TIMEOUT_MINUTES",
    "LaunchBurst": "AMIFORGE_LAUNCH_BURST",
    "LaunchesPerSecond": "AMIFORGE_LAUNCHES_PER_SECOND",
    "BuilderInstanceProfileArn": "AMIFORGE_INSTANCE_PROFILE_ARN",
    "BaseParameterPrefixes": "AMIFORGE_BASE_PARAMETER_PREFIXES",
    "DetectSchedule": "AMIFORGE_DETECT_SCHEDULE",
    "BundleBucket": "AMIFORGE_ARTIFACT_BUCKET",
    "AllowedInstanceProfiles": "AMIFORGE_ALLOWED_INSTANCE_PROFILES",
    "DefaultSecurityGroupIds": "AMIFORGE_DEFAULT_SECURITY_GROUPS",
}


def connect(aws: AwsContext, stack: str) -> StepEnv:
    described = describe_stack(aws, stack)
    if described is None or described["StackStatus"] == "DELETE_COMPLETE":
        raise NotFound(f"stack {stack!r} not found in {aws.resolved_region}",
                       hint="run `amiforge deploy` first, or pass --stack/--region")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "")
                  for p in described.get("Parameters", [])}
    environ = {variable: outputs[key] for key, variable in REQUIRED_OUTPUTS.items()}
    environ["AMIFORGE_STACK_NAME"] = stack  # the amiforge:stack tag, as the template sets it
    # The stack's account (its ARN's fifth field): the artifact bucket's expected owner.
    stack_arn = str(described.get("StackId", "")).split(":")
    if len(stack_arn) > 4 and stack_arn[4].isdigit():
        environ["AMIFORGE_ACCOUNT_ID"] = stack_arn[4]
    environ.update({variable: outputs[key] for key, variable in OPTIONAL_OUTPUTS.items()
                    if outputs.get(key)})
    # A parameter the stack does not report (an older template) keeps StepEnv's default,
    # which is the template's default too.
    environ.update({variable: parameters[key] for key, variable in PARAMETERS.items()
                    if parameters.get(key)})
    return replace(StepEnv.from_environ(environ), aws=aws)
