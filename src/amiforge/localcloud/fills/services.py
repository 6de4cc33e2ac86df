"""Every service's fills in one registry: what :class:`~amiforge.localcloud.LocalCloud`
installs at start and removes at stop (see :mod:`amiforge.localcloud.fills`)."""

from __future__ import annotations

from amiforge.localcloud.fills import (
    FillRegistry,
    awslambda,
    cloudformation,
    dynamodb,
    ec2,
    ec2_images,
    events,
    s3,
    sfn_history,
    ssm,
    stepfunctions,
)

REGISTRY = FillRegistry([
    *awslambda.FILLS,
    *cloudformation.FILLS,
    *dynamodb.FILLS,
    *ec2.FILLS,
    *ec2_images.FILLS,
    *events.FILLS,
    *s3.FILLS,
    *sfn_history.FILLS,
    *ssm.FILLS,
    *stepfunctions.FILLS,
])
