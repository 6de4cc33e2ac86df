"""DynamoDB tables themselves (not their items): what ``deploy`` needs to find the tables a
destroyed stack retained, and what ``destroy --delete-data`` needs to remove them."""

from __future__ import annotations

from typing import Any

from amiforge.aws.errors import ClientError, aws_call, error_code, translate

_GONE = "ResourceNotFoundException"


def names_starting(ddb: Any, prefix: str) -> list[str]:
    """Every table of the region whose name starts with ``prefix``."""
    with aws_call("ListTables"):
        return [name for page in ddb.get_paginator("list_tables").paginate()
                for name in page.get("TableNames", []) if name.startswith(prefix)]


def tags_of(ddb: Any, table: str) -> dict[str, str]:
    with aws_call("DescribeTable"):
        arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    with aws_call("ListTagsOfResource"):
        return {t["Key"]: t["Value"]
                for t in ddb.list_tags_of_resource(ResourceArn=arn).get("Tags", [])}


def exists(ddb: Any, table: str) -> bool:
    try:
        ddb.describe_table(TableName=table)
    except ClientError as err:
        if error_code(err) == _GONE:
            return False
        raise translate(err, "DescribeTable") from err
    return True


def delete(ddb: Any, table: str) -> bool:
    """Delete ``table``; False if it was already gone."""
    try:
        ddb.delete_table(TableName=table)
    except ClientError as err:
        if error_code(err) == _GONE:
            return False
        raise translate(err, "DeleteTable") from err
    return True
