"""What a pipeline step needs: clients and the stack's names, read once from the environment.

The template sets these variables on every function. The CLI and tests build a StepEnv
directly, which is how the same step code runs in Lambda, on a laptop, or in a test.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any

from amiforge.aws.catalog import Catalog
from amiforge.aws.recipe_store import RecipeStore
from amiforge.aws.session import AwsContext
from amiforge.core.assets import comma_list
from amiforge.core.plan import schedule_period
from amiforge.core.ratelimit import DEFAULT_LAUNCH_BURST, DEFAULT_LAUNCH_PER_SECOND
from amiforge.core.rules import parse_base_prefixes


@dataclass
class StepEnv:
    catalog_table: str
    recipes_table: str
    topic_arn: str | None = None
    cleanup_queue_url: str | None = None
    cleanup_dead_letter_url: str | None = None
    state_machine_arn: str | None = None
    # Waits: on AWS a recipe's timeout minute is 60 s and images are polled every 15 s.
    # The local cloud deploys the same stack with smaller numbers (the only difference).
    seconds_per_minute: int = 60
    poll_seconds: int = 15
    image_timeout_minutes: int = 240
    instance_profile_arn: str | None = None
    # amiforge's own RunInstances bucket (kept under EC2's 5 burst, 2/s: aws/pacing.py).
    launch_burst: int = DEFAULT_LAUNCH_BURST
    launch_per_second: float = DEFAULT_LAUNCH_PER_SECOND
    build_stack_role_arn: str | None = None
    # The stack's BaseParameterPrefixes: where base parameters may live besides /aws/service/.
    base_parameter_prefixes: tuple[str, ...] = ()
    # The stack's name: the amiforge:stack tag on everything a build creates.
    stack_name: str = ""
    # The stack's builder security group (no inbound rules): builders join it unless the
    # recipe names its own security_group_ids, so they never join a VPC's default group.
    builder_security_group_id: str | None = None
    # The stack's BuilderSubnetId: where builders launch unless the recipe says.
    builder_subnet_id: str | None = None
    # The DetectSchedule expression: failed builds are retried after 1, 2, 4 ... periods.
    detect_schedule: str | None = None
    # The artifact bucket (BundleBucket), which holds recipes' build.files and build
    # templates over CloudFormation's inline limit, and the account that owns it
    # (ExpectedBucketOwner).
    artifact_bucket: str | None = None
    account_id: str | None = None
    # The stack's DefaultSecurityGroupIds: builders' groups unless the recipe names some.
    default_security_group_ids: tuple[str, ...] = ()
    # The stack's AllowedInstanceProfiles: what build.instance_profile may name.
    allowed_instance_profiles: tuple[str, ...] = ()
    # The permissions boundary of build-template roles; set only when the stack lets
    # build templates create IAM (BuildTemplateIam=enabled).
    build_role_boundary_arn: str | None = None
    aws: AwsContext = field(default_factory=AwsContext)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> StepEnv:
        e = os.environ if environ is None else environ
        return cls(
            # Each function is given only the variables it needs.
            catalog_table=e.get("AMIFORGE_CATALOG_TABLE", ""),
            recipes_table=e.get("AMIFORGE_RECIPES_TABLE", ""),
            topic_arn=e.get("AMIFORGE_TOPIC_ARN") or None,
            cleanup_queue_url=e.get("AMIFORGE_CLEANUP_QUEUE_URL") or None,
            cleanup_dead_letter_url=e.get("AMIFORGE_CLEANUP_DLQ_URL") or None,
            state_machine_arn=e.get("AMIFORGE_STATE_MACHINE_ARN") or None,
            seconds_per_minute=int(e.get("AMIFORGE_SECONDS_PER_MINUTE", "60")),
            poll_seconds=int(e.get("AMIFORGE_POLL_SECONDS", "15")),
            image_timeout_minutes=int(e.get("AMIFORGE_IMAGE_TIMEOUT_MINUTES", "240")),
            instance_profile_arn=e.get("AMIFORGE_INSTANCE_PROFILE_ARN") or None,
            launch_burst=int(e.get("AMIFORGE_LAUNCH_BURST") or DEFAULT_LAUNCH_BURST),
            launch_per_second=float(e.get("AMIFORGE_LAUNCHES_PER_SECOND")
                                    or DEFAULT_LAUNCH_PER_SECOND),
            build_stack_role_arn=e.get("AMIFORGE_BUILD_STACK_ROLE_ARN") or None,
            base_parameter_prefixes=parse_base_prefixes(
                e.get("AMIFORGE_BASE_PARAMETER_PREFIXES")),
            stack_name=e.get("AMIFORGE_STACK_NAME", ""),
            builder_security_group_id=e.get("AMIFORGE_BUILDER_SECURITY_GROUP") or None,
            builder_subnet_id=e.get("AMIFORGE_BUILDER_SUBNET") or None,
            detect_schedule=e.get("AMIFORGE_DETECT_SCHEDULE") or None,
            artifact_bucket=e.get("AMIFORGE_ARTIFACT_BUCKET") or None,
            account_id=e.get("AMIFORGE_ACCOUNT_ID") or None,
            default_security_group_ids=comma_list(
                e.get("AMIFORGE_DEFAULT_SECURITY_GROUPS")),
            allowed_instance_profiles=comma_list(
                e.get("AMIFORGE_ALLOWED_INSTANCE_PROFILES")),
            build_role_boundary_arn=e.get("AMIFORGE_BUILD_ROLE_BOUNDARY") or None,
        )

    @property
    def detect_period(self) -> timedelta:
        return schedule_period(self.detect_schedule)

    @property
    def region(self) -> str:
        return self.aws.resolved_region

    def client(self, service: str, region: str | None = None) -> Any:
        return self.aws.client(service, region)

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self.client("dynamodb"), self.catalog_table)

    @cached_property
    def store(self) -> RecipeStore:
        return RecipeStore(self.client("dynamodb"), self.recipes_table)
