"""CloudWatch Logs: the function log groups a destroyed stack's late invocations left."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from amiforge.aws.errors import aws_call


def existing_groups(logs: Any, names: Iterable[str]) -> list[str]:
    """Those of ``names`` that exist as log groups (exact names only)."""
    found = []
    for name in names:
        with aws_call("DescribeLogGroups"):
            groups = logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
        found += [g["logGroupName"] for g in groups if g["logGroupName"] == name]
    return found


def delete_group(logs: Any, name: str) -> None:
    with aws_call("DeleteLogGroup"):
        logs.delete_log_group(logGroupName=name)
