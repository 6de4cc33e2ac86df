"""Find a deployed stack and build the StepEnv that points at its tables and machine."""

from __future__ import annotations

from amiforge.aws.session import AwsContext
from amiforge.deploy.stack import stack_outputs
from amiforge.steps.env import StepEnv


def connect(aws: AwsContext, stack: str) -> StepEnv:
    outputs = stack_outputs(aws, stack)
    return StepEnv(
        catalog_table=outputs["CatalogTableName"],
        recipes_table=outputs["RecipesTableName"],
        topic_arn=outputs.get("NotificationsTopicArn"),
        cleanup_queue_url=outputs.get("CleanupQueueUrl"),
        state_machine_arn=outputs["StateMachineArn"],
        aws=aws,
    )
