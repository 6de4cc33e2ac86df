"""What ``--output json`` prints: one shape per command, the contract docs/cli.md states.

Every command's JSON is an object with ``version`` (:data:`VERSION`) at the top, so a
shape can grow without breaking a script: a list is wrapped under a plural noun
(``{"version": 1, "builds": [...]}``). Keys are snake_case; internal fields (the task
token, the sparse-index attribute ``available_recipe``, the build key — the build id
already names the build) never appear. Where a field can be missing from a record
(a build that failed before it had an image), the key is there with ``null``, so a
record's keys are the same for every build. ``tests/e2e/test_cli_contract.py`` holds
each command's keys to the document.

The functions here turn what ``ops/`` and ``steps/`` return into those shapes; the CLI
only renders them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from amiforge.aws.catalog import FAILED
from amiforge.core.model import Recipe
from amiforge.core.statuses import MEANINGS

VERSION = 1

BUILD_FIELDS = ("recipe", "build_id", "status", "reason", "image_id", "image_name", "images",
                "base_ami", "recipe_hash", "trigger", "instance_id", "instance_type",
                "execution_arn", "created_at", "updated_at", "finished_at", "console_tail",
                "revoked_at", "revoked_by", "rolled_back_to")
ROLLBACK_FIELDS = ("event", "at", "by", "reason", "builds")
ATTEMPT_FIELDS = ("attempt", "instance_id", "outcome", "reason", "console_tail")
TEST_FIELDS = ("instance_id", "outcome", "duration_seconds", "reason")  # recipe's test:
# release.launch_templates / instance_refresh (steps/rollout.py): what the rollout did.
ROLLOUT_FIELDS = ("outcome", "reason", "templates", "refreshes", "skipped")
STARTED_FIELDS = ("recipe", "build_id", "base_ami", "execution_arn", "started", "outcome",
                  "image_id", "summary")
WAITED_FIELDS = ("recipe", "build_id", "base_ami", "execution_arn", "status", "reason",
                 "image_id")
PUBLISHED_FIELDS = ("recipe", "hash", "changed", "previous_hash", "git_commit", "revived",
                    "build_started", "build_outcome", "re_released", "files_uploaded")
APPROVAL_FIELDS = ("recipe", "build_id", "image_id", "decision", "status", "reason", "already")
DECISION_FIELDS = ("recipe", "action", "reason", "detail", "base_ami", "previous_base_ami",
                   "changes")


def versioned(**fields: Any) -> dict[str, Any]:
    """``{"version": VERSION, **fields}``: the top level of every command's JSON."""
    return {"version": VERSION, **fields}


def _pick(record: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    return {name: record.get(name) for name in fields}


def build_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A catalog record as ``history`` and ``demo`` show it: every field of
    :data:`BUILD_FIELDS`, the status's meaning, and each launch attempt."""
    shown = _pick(record, BUILD_FIELDS)
    shown["images"] = dict(record.get("images") or {})
    shown["status_meaning"] = MEANINGS.get(record.get("status") or "")
    shown["attempts"] = [_pick(a, ATTEMPT_FIELDS) for a in record.get("attempts") or []]
    shown["rollbacks"] = [_pick(e, ROLLBACK_FIELDS) for e in record.get("rollbacks") or []]
    test = record.get("test")
    shown["test"] = _pick(test, TEST_FIELDS) if isinstance(test, Mapping) else None
    rollout = record.get("rollout")
    shown["rollout"] = _pick(rollout, ROLLOUT_FIELDS) if isinstance(rollout, Mapping) else None
    if shown["rollout"] is not None:
        for key in ("templates", "refreshes", "skipped"):
            shown["rollout"][key] = list(shown["rollout"][key] or [])
    return shown


def failure_tail(record: Mapping[str, Any]) -> str | None:
    """The console tail of a FAILED build (what ``history`` prints under the table)."""
    return record.get("console_tail") or None if record.get("status") == FAILED else None


def history(recipe: str, records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return versioned(recipe=recipe, builds=[build_record(r) for r in records])


def latest(recipe: str, image: Mapping[str, Any]) -> dict[str, Any]:
    """``amiforge latest``: snake_case, unlike Custom::LatestAmi's CloudFormation
    attributes (ImageId, ...), which keep AWS's PascalCase."""
    return versioned(recipe=recipe, image_id=image["ImageId"], image_name=image["ImageName"],
                     build_id=image["BuildId"], creation_date=image["CreationDate"],
                     region=image["Region"])


def started_builds(builds: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``build`` without ``--wait``: what each start did (``started`` only if it started)."""
    return versioned(builds=[_pick(b, STARTED_FIELDS) for b in builds])


def published(results: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each recipe ``publish`` stored, with the build it started (or re-released)."""
    return [_pick(r, PUBLISHED_FIELDS) for r in results]


def waited_build(build: Mapping[str, Any]) -> dict[str, Any]:
    return _pick(build, WAITED_FIELDS)


def decision(entry: Mapping[str, Any], *extra: str) -> dict[str, Any]:
    """A plan/detect decision; ``extra`` fields (detect's build_id, outcome) as given."""
    shown = _pick(entry, DECISION_FIELDS + extra)
    shown["changes"] = list(entry.get("changes") or [])
    return shown


def plan(decisions: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    return versioned(decisions=[decision(d) for d in decisions])


def detect(report: Mapping[str, Any]) -> dict[str, Any]:
    return versioned(trigger=report["trigger"], recipes=report["recipes"],
                     started=report["started"],
                     decisions=[decision(d, "build_id", "outcome") for d in report["decisions"]])


def validated(recipes: Iterable[Recipe]) -> dict[str, Any]:
    return versioned(recipes=[{"name": r.name, "base": r.base.label(),
                               "platform": r.build.platform, "hash": r.hash,
                               "source": r.source} for r in recipes])


def demo(summary: Mapping[str, Any]) -> dict[str, Any]:
    return versioned(stack=summary["stack"], outputs=summary["outputs"],
                     seconds=summary["seconds"], ok=summary["ok"],
                     builds=[waited_build(b) for b in summary["builds"]],
                     catalog=[build_record(b) for b in summary["catalog"]])


FLEET_FIELDS = ("kind", "id", "region", "recipe", "image_id", "build_id", "releases_behind",
                "image_created_at", "image_age_days", "base_ami", "base_age_days",
                "description")


def fleet(users: Iterable[Mapping[str, Any]], errors: Iterable[Mapping[str, Any]]
          ) -> dict[str, Any]:
    """``fleet``: one entry per user of an image; a region that could not be read in
    ``errors`` (``region``, ``reason``)."""
    return versioned(users=[_pick(u, FLEET_FIELDS) for u in users],
                     errors=[{"region": e.get("region"), "reason": e.get("reason")}
                             for e in errors])
