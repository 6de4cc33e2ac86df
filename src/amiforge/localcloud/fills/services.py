"""Every service's fills in one registry: what :class:`~amiforge.localcloud.LocalCloud`
installs at start and removes at stop (see :mod:`amiforge.localcloud.fills`)."""

from __future__ import annotations

from amiforge.localcloud.fills import (
    FillRegistry,
    autoscaling,
    awslambda,
    cloudformation,
    dispatch,
    dynamodb,
    ec2,
    ec2_images,
    ec2_launch_templates,
    ec2_tags,
    events,
    s3,
    sfn_history,
    sfn_programs,
    sfn_retry,
    ssm,
    stepfunctions,
)

REGISTRY = FillRegistry([
    *autoscaling.FILLS,
    *awslambda.FILLS,
    *cloudformation.FILLS,
    *dispatch.FILLS,
    *dynamodb.FILLS,
    *ec2.FILLS,
    *ec2_images.FILLS,
    *ec2_launch_templates.FILLS,
    *ec2_tags.FILLS,
    *events.FILLS,
    *s3.FILLS,
    *sfn_history.FILLS,
    *sfn_programs.FILLS,
    *sfn_retry.FILLS,
    *ssm.FILLS,
    *stepfunctions.FILLS,
])
