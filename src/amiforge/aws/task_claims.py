"""The AwaitStop task token's claim on a build's record: one resumer per token.

A stopped builder can be noticed by several resumers at once: its stop event (and
EventBridge's duplicates of it), the stop check, AwaitStop's own look. Each first claims
the token on the catalog record with a conditional write; the one that gets ``"claimed"``
judges the builder, images it and answers the token, then :meth:`TaskClaims.release`
removes the token so a late event finds nothing to resume. A claim whose holder died is
taken again after its lease. Nothing here decides anything: :mod:`amiforge.steps.stop_check`
does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from amiforge.aws.catalog import Catalog
from amiforge.aws.dynamo import value
from amiforge.aws.errors import aws_call
from amiforge.errors import AwsCallFailed


class TaskClaims:
    """The task-token claims of one catalog's build records."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def claim(self, recipe: str, build_id: str, token: str, *, lease_seconds: int) -> str:
        """Take the record's AwaitStop ``task_token`` for one resumer (the stop event, a
        duplicate of it, the stop check, AwaitStop's own look): the one that gets
        ``"claimed"`` may act on the stopped instance and answer the token; the others
        get ``"held"`` (another resumer is at it: leave its marker) or ``"gone"`` (the
        record no longer holds this token: answered, cancelled, or a newer attempt's).
        A claim older than ``lease_seconds`` (its holder died) can be taken again."""
        now = datetime.now(UTC)
        stale = (now - timedelta(seconds=lease_seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        try:
            with aws_call("UpdateItem"):
                self.catalog.db.update_item(
                    TableName=self.catalog.table,
                    Key={"recipe": value(recipe), "build_id": value(build_id)},
                    UpdateExpression="SET #c = :now",
                    ConditionExpression="#t = :token AND (attribute_not_exists(#c) OR "
                                        "#c < :stale)",
                    ExpressionAttributeNames={"#t": "task_token",
                                              "#c": "task_token_claimed_at"},
                    ExpressionAttributeValues={
                        ":token": value(token), ":stale": value(stale),
                        ":now": value(now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))})
        except AwsCallFailed as err:
            if err.code != "ConditionalCheckFailedException":
                raise
            record = self.catalog.get(recipe, build_id)
            return "held" if record and record.get("task_token") == token else "gone"
        return "claimed"

    def release(self, recipe: str, build_id: str, token: str, *,
                answered: bool = True) -> None:
        """Remove the token a claim answered (only that token: a newer attempt's stays), so
        a late or repeated stop event finds nothing to resume, with the ``stop_context``
        AwaitStop left for it; ``answered=False`` (the resume failed) only drops the
        claim, for the next resumer to try at once."""
        try:
            with aws_call("UpdateItem"):
                self.catalog.db.update_item(
                    TableName=self.catalog.table,
                    Key={"recipe": value(recipe), "build_id": value(build_id)},
                    UpdateExpression="REMOVE #t, #c, #s" if answered else "REMOVE #c",
                    ConditionExpression="#t = :token",
                    ExpressionAttributeNames={"#t": "task_token",
                                              "#c": "task_token_claimed_at",
                                              **({"#s": "stop_context"} if answered else {})},
                    ExpressionAttributeValues={":token": value(token)})
        except AwsCallFailed as err:
            if err.code != "ConditionalCheckFailedException":
                raise
