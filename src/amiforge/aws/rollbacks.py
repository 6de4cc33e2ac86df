"""The catalog's status moves of a rollback (``amiforge rollback`` / ``release``,
ops/rollback.py): AVAILABLE <-> REVOKED, each conditional on the status it expects, so a
retried or concurrent command cannot move a record twice, and each appending its event
to the record's ``rollbacks`` list (what ``history`` shows)."""

from __future__ import annotations

from typing import Any

from amiforge.aws.catalog import AVAILABLE, REVOKED, Catalog, now_iso
from amiforge.aws.dynamo import value
from amiforge.aws.errors import aws_call
from amiforge.errors import AwsCallFailed


def revoke(catalog: Catalog, recipe: str, build_id: str, *, reason: str, by: str, at: str,
           rolled_back_to: str, event: dict[str, Any]) -> bool:
    """AVAILABLE -> REVOKED, only while AVAILABLE (a retried or concurrent step cannot
    move it back): leaves the ``available`` index, records why, who, when and the
    build `latest` went back to, and appends ``event`` to ``rollbacks``."""
    return _move(
        catalog, recipe, build_id, expected=AVAILABLE, event=event,
        set_fields={"status": REVOKED, "reason": reason, "revoked_at": at,
                    "revoked_by": by, "rolled_back_to": rolled_back_to},
        remove=("available_recipe",))


def unrevoke(catalog: Catalog, recipe: str, build_id: str, *, event: dict[str, Any]) -> bool:
    """REVOKED -> AVAILABLE, only while REVOKED (``amiforge release``, or a rollback
    undoing itself): back in the ``available`` index, the revocation's fields gone;
    ``event`` (appended to ``rollbacks``) keeps what happened."""
    return _move(
        catalog, recipe, build_id, expected=REVOKED, event=event,
        set_fields={"status": AVAILABLE, "available_recipe": recipe},
        remove=("reason", "revoked_at", "revoked_by", "rolled_back_to"))


def note_rollback(catalog: Catalog, recipe: str, build_id: str, *, event: dict[str, Any],
                  expected: str = AVAILABLE) -> bool:
    """Append ``event`` to the record's ``rollbacks``, only while it is ``expected``
    (a rollback target must still be AVAILABLE)."""
    return _move(catalog, recipe, build_id, expected=expected, event=event, set_fields={},
                 remove=())


def _move(catalog: Catalog, recipe: str, build_id: str, *, expected: str,
          event: dict[str, Any], set_fields: dict[str, Any], remove: tuple[str, ...]) -> bool:
    fields = {**set_fields, "updated_at": now_iso()}
    names = {f"#f{i}": k for i, k in enumerate(fields)}
    values = {f":f{i}": value(v) for i, v in enumerate(fields.values())}
    names.update({"#status": "status", "#log": "rollbacks"})
    values.update({":expected": value(expected), ":empty": value([]),
                   ":event": value([event])})
    expression = ("SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
                  + ", #log = list_append(if_not_exists(#log, :empty), :event)")
    if remove:
        names.update({f"#r{j}": key for j, key in enumerate(remove)})
        expression += " REMOVE " + ", ".join(f"#r{j}" for j in range(len(remove)))
    try:
        with aws_call("UpdateItem"):
            catalog.db.update_item(
                TableName=catalog.table,
                Key={"recipe": value(recipe), "build_id": value(build_id)},
                UpdateExpression=expression,
                ConditionExpression="attribute_exists(build_id) AND #status = :expected",
                ExpressionAttributeNames=names, ExpressionAttributeValues=values)
    except AwsCallFailed as err:
        if err.code == "ConditionalCheckFailedException":
            return False
        raise
    return True
