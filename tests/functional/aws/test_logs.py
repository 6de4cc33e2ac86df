"""aws/logs.py against the local cloud: only exact log-group names count (a prefix match
would make `destroy --delete-data` delete another stack's logs)."""

from __future__ import annotations

import uuid
from typing import Any

import boto3

from amiforge.aws import logs as logs_api


def test_only_exact_log_group_names_count(local_cloud: Any) -> None:
    logs = boto3.client("logs")
    name = f"/aws/lambda/logs-{uuid.uuid4().hex[:8]}-detect"
    logs.create_log_group(logGroupName=name)
    logs.create_log_group(logGroupName=name + "-other")
    assert logs_api.existing_groups(logs, [name, name + "-missing"]) == [name]
    logs_api.delete_group(logs, name)
    assert logs_api.existing_groups(logs, [name]) == []
