"""Prune: retention, planned then carried out. The scheduled Prune function and
``amiforge prune [--dry-run]`` both run :func:`prune`.

1. Read every published recipe (its current retention settings) and its catalog history.
2. Find which of the AVAILABLE images are in use, in every region they live in
   (:mod:`amiforge.aws.usage`). Where that cannot be known (a launch template names its
   image through an SSM parameter amiforge may not read), no image of that region is
   pruned: a build that would have been is kept, the reason saying why.
3. Plan with the pure :func:`amiforge.core.retention.plan_recipe`.
4. Unless it is a dry run, carry the plan out: a pruned build's image is deregistered in
   every region of its ``images`` map, with its snapshots, and its record becomes PRUNED
   (leaving the ``available`` index); a deprecated one gets EC2's deprecation time in
   every region and the time on its record. A failure is reported per image and the
   rest goes on; the record is only marked PRUNED once every copy is gone. Snapshots an
   interrupted earlier run left behind (image deregistered, snapshots not yet deleted)
   are found by their ``amiforge:build-id`` tag in every region and deleted too.

The report lists every decision (recipe, image, action, reason) with its outcome, so a
dry run prints exactly what a real run then does.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import ec2_lifecycle
from amiforge.aws.catalog import AVAILABLE, PRUNED, now_iso
from amiforge.aws.usage import UsageUnknown, images_in_use
from amiforge.core.model import Recipe
from amiforge.core.retention import DEPRECATE, KEEP, PRUNE, Decision, RetentionPolicy, parse_time
from amiforge.core.retention import plan_recipe as plan_one
from amiforge.errors import AmiforgeError, RecipeInvalid
from amiforge.steps.env import StepEnv

log = logging.getLogger(__name__)


def plan(env: StepEnv, recipes: list[str] | None = None, *,
         now: datetime | None = None) -> tuple[list[Decision], list[dict[str, Any]]]:
    """(decisions, skipped recipes) for the published recipes (or only ``recipes``)."""
    now = now or datetime.now(UTC)
    only = set(recipes or [])
    policies: dict[str, RetentionPolicy] = {}
    skipped: list[dict[str, Any]] = []
    for record in env.store.all_current():
        if only and record["name"] not in only:
            continue
        try:
            policies[record["name"]] = RetentionPolicy.of(Recipe.from_document(record["document"]))
        except RecipeInvalid as err:
            skipped.append({"recipe": record["name"], "reason": f"invalid recipe: {err}"})
    for name in sorted(only - set(policies) - {s["recipe"] for s in skipped}):
        skipped.append({"recipe": name, "reason": "not published"})
    histories = {name: env.catalog.history(name) for name in sorted(policies)}
    in_use, unknown = _in_use(env, [b for builds in histories.values() for b in builds
                                    if b.get("status") == AVAILABLE])
    decisions = [_unless_unknown(env, d, unknown) for name in sorted(policies)
                 for d in plan_one(name, histories[name], policies[name], now=now,
                                   in_use=in_use)]
    return decisions, skipped


def _unless_unknown(env: StepEnv, decision: Decision, unknown: dict[str, str]) -> Decision:
    """A prune becomes a keep when usage in one of the build's regions is unknown."""
    if decision.action != PRUNE:
        return decision
    reasons = [unknown[region] for region in sorted(_regions(env, decision))
               if region in unknown]
    if not reasons:
        return decision
    return replace(decision, action=KEEP, reason="; ".join(reasons) + "; kept")


def _in_use(env: StepEnv, builds: list[dict[str, Any]]
            ) -> tuple[dict[str, list[str]], dict[str, str]]:
    """({image id: [uses]}, {region: why its usage is unknown})."""
    by_region: dict[str, set[str]] = {}
    for build in builds:
        images = build.get("images") or {env.region: build.get("image_id")}
        for region, image_id in images.items():
            if image_id:
                by_region.setdefault(region, set()).add(image_id)
    found: dict[str, list[str]] = {}
    unknown: dict[str, str] = {}
    for region, ids in sorted(by_region.items()):
        label = "" if region == env.region else f" in {region}"
        try:
            found.update(images_in_use(lambda service, r=region: env.client(service, r), ids,
                                       label=label))
        except UsageUnknown as err:
            log.warning("image usage in %s is unknown, nothing there is pruned: %s",
                        region, err.reason)
            unknown[region] = err.reason
    return found, unknown


def prune(event: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    """Input (all optional): {dry_run: bool, recipes: [names]}. Returns the report."""
    dry_run = bool(event.get("dry_run"))
    decisions, skipped = plan(env, event.get("recipes"))
    entries = []
    for decision in decisions:
        entry = decision.as_dict()
        if dry_run or decision.action not in (PRUNE, DEPRECATE):
            entry["outcome"] = "planned" if decision.action in (PRUNE, DEPRECATE) else "kept"
        else:
            try:
                entry["outcome"] = (_prune(env, decision) if decision.action == PRUNE
                                    else _deprecate(env, decision))
            except AmiforgeError as err:
                log.warning("retention of %s failed: %s", decision.image_id, err)
                entry["outcome"] = f"error: {err}"
        entries.append(entry)
    errors = [e for e in entries if str(e["outcome"]).startswith("error")]
    return {"dry_run": dry_run, "decisions": entries, "skipped": skipped,
            "pruned": sum(1 for e in entries if e["outcome"] == "pruned"),
            "deprecated": sum(1 for e in entries if e["outcome"] == "deprecated"),
            "errors": len(errors)}


def _regions(env: StepEnv, decision: Decision) -> dict[str, str]:
    return dict(decision.images) or {env.region: decision.image_id}


def _prune(env: StepEnv, decision: Decision) -> str:
    for region, image_id in sorted(_regions(env, decision).items()):
        ec2 = env.client("ec2", region)
        ec2_api.deregister_with_snapshots(ec2, image_id)
        # Snapshots of this build an interrupted earlier run left behind in the region:
        # it deregistered the image, so EC2 no longer says which snapshots were behind it.
        _delete_left_snapshots(ec2, decision.build_id)
    # Snapshots the catalog knows of (home region) that outlived their image, e.g. after
    # an earlier prune was interrupted between deregistering and deleting.
    record = env.catalog.get(decision.recipe, decision.build_id) or {}
    for snapshot_id in record.get("snapshot_ids") or []:
        ec2_lifecycle.delete_snapshot(env.client("ec2"), snapshot_id)
    marked = env.catalog.update(decision.recipe, decision.build_id, only_if_status=AVAILABLE,
                                status=PRUNED, pruned_at=now_iso(),
                                prune_reason=decision.reason, remove=("available_recipe",))
    return "pruned" if marked else "pruned (record was no longer AVAILABLE)"


def _delete_left_snapshots(ec2: Any, build_id: str) -> None:
    """Delete this account's snapshots tagged with ``build_id`` that no registered image
    uses (one that does, e.g. an image the catalog does not know of, is left alone)."""
    used = {snapshot for image in ec2_lifecycle.build_images(ec2, build_id)
            if image.get("State") != "deregistered" for snapshot in ec2_api.snapshot_ids(image)}
    snapshots = {s["SnapshotId"] for s in ec2_lifecycle.build_snapshots(ec2, build_id)}
    for snapshot_id in sorted(snapshots - used):
        ec2_lifecycle.delete_snapshot(ec2, snapshot_id)  # False (still in use): left alone


def _deprecate(env: StepEnv, decision: Decision) -> str:
    when = parse_time(decision.deprecate_at or "")
    for region, image_id in sorted(_regions(env, decision).items()):
        ec2_lifecycle.enable_deprecation(env.client("ec2", region), image_id, when)
    env.catalog.update(decision.recipe, decision.build_id, only_if_status=AVAILABLE,
                       deprecate_at=decision.deprecate_at)
    return "deprecated"
