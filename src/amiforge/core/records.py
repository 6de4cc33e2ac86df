"""The catalog's build record, typed: what aws/catalog.py reads and writes, one item per
build (keyed ``recipe`` + ``build_id``).

:class:`BuildRecord` is a ``TypedDict``: at run time a record is still the plain ``dict``
DynamoDB's deserialiser gives, so callers that index it or pass it on keep working, while
mypy knows each field's type. Only the key and ``status`` are always there; everything
else depends on how far the build got (``total=False``).
"""

from __future__ import annotations

from typing import Any, Required, TypedDict

from amiforge.core.statuses import BuildStatus


class Attempt(TypedDict, total=False):
    """One launch of a builder (``attempts``, appended by Verify, counted from 1)."""

    attempt: Required[int]
    instance_id: str
    instance_type: str
    outcome: str
    reason: str
    console_tail: str


class BuildRecord(TypedDict, total=False):
    # identity
    recipe: Required[str]
    build_id: Required[str]
    status: Required[BuildStatus | str]  # a plain str as read back; equal to the member
    build_key: str  # (recipe, recipe hash, base AMI); every build id starts with it
    recipe_hash: str
    base_ami: str
    base_name: str
    trigger: str
    git_commit: str
    platform: str
    builder: str
    retries: int
    regions: list[str]
    share_with: list[str]
    execution_arn: str
    # times (ISO 8601 UTC, sortable as strings)
    created_at: str
    updated_at: str
    finished_at: str
    built_at: str
    # progress
    task_token: str  # the AwaitStop task's token, while the build waits for its builder
    task_token_claimed_at: str  # when a resumer took the token (aws/task_claims.py)
    stop_context: str  # JSON {build, launch} AwaitStop left for the stop event's verdict
    instance_id: str
    instance_type: str
    launches: int
    attempts: list[Attempt]
    last_attempt_reason: str
    parameters: dict[str, Any]
    # result
    reason: str
    console_tail: str
    image_id: str
    image_name: str
    images: dict[str, str]  # region -> image id of its copy
    snapshot_ids: list[str]
    shared_with: list[str]
    available_recipe: str  # set only while AVAILABLE: the sparse `available` index's key
    # the approval gate (release.approval: manual, steps/approval.py)
    approval: str  # "none" or "manual", from the recipe version built
    approval_token: str  # the AwaitApproval task's token, while AWAITING_APPROVAL
    approval_requested_at: str
    approval_deadline: str
    approved_at: str
    approved_by: str
    rejected_at: str
    rejected_by: str
    reject_reason: str
    # release and retention
    release_trigger: str
    released_at: str
    deprecate_at: str
    prune_reason: str
    pruned_at: str
    # rollback (core/rollback.py): who took `latest` from this build, when, for which
    # build, and every rollback event it took part in
    revoked_at: str
    revoked_by: str
    rolled_back_to: str
    rollbacks: list[dict[str, Any]]
