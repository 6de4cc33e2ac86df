"""Prune: retention, planned then carried out. The scheduled Prune function and
``amiforge prune [--dry-run]`` both run :func:`prune`.

1. Read every published recipe (its current retention settings) and its catalog history.
2. Find which of the AVAILABLE images are in use, in every region they live in
   (:mod:`amiforge.aws.usage`). Where that cannot be known (a launch template names its
   image through an SSM parameter amiforge may not read), no image of that region is
   pruned: a build that would have been is kept, the reason saying why.
3. Plan with the pure :func:`amiforge.core.retention.plan_recipe`, then put every prune
   to the deletion gate (``core/deletion.py``): an image ``latest`` names in any region,
   or one whose use or region cannot be read, is kept, with the gate's reason.
4. Unless it is a dry run, carry the plan out: a pruned build's image is deregistered in
   every region of its ``images`` map, with its snapshots, and its record becomes PRUNED
   (leaving the ``available`` index); a deprecated one gets EC2's deprecation time in
   every region and the time on its record. A failure is reported per image and the
   rest goes on; the record is only marked PRUNED once every copy is gone. Snapshots an
   interrupted earlier run left behind (image deregistered, snapshots not yet deleted)
   are found by their ``amiforge:build-id`` tag in every region and deleted too.
   The builds' images and snapshots are listed once per region for the whole run (one
   DescribeImages, one DescribeSnapshots); each pruned image then costs its
   DeregisterImage and DeleteSnapshot calls, and each build its record's UpdateItem
   (``bench/prune.py``).

The report lists every decision (recipe, image, action, reason) with its outcome, so a
dry run prints exactly what a real run then does.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import ec2_lifecycle
from amiforge.aws.catalog import AVAILABLE, PRUNED, now_iso
from amiforge.core.deletion import Owner, decide_image
from amiforge.core.events import PruneEvent
from amiforge.core.in_use import CANNOT_SEE
from amiforge.core.parse import recipe_from_document
from amiforge.core.records import BuildRecord
from amiforge.core.retention import (
    DEPRECATE,
    KEEP,
    PRUNE,
    RetentionDecision,
    RetentionPolicy,
    parse_time,
)
from amiforge.core.retention import plan_recipe as plan_one
from amiforge.errors import AmiforgeError, RecipeInvalid
from amiforge.steps.env import StepEnv
from amiforge.steps.gate import Gate, describe_failure

log = logging.getLogger(__name__)


def plan(env: StepEnv, recipes: Collection[str] | None = None, *, now: datetime | None = None,
         gate: Gate | None = None, purge: Collection[str] = ()
         ) -> tuple[list[RetentionDecision], list[dict[str, Any]]]:
    decisions, skipped, _ = _plan(env, recipes, now=now, gate=gate, purge=purge)
    return decisions, skipped


def _plan(env: StepEnv, recipes: Collection[str] | None = None, *,
          now: datetime | None = None, gate: Gate | None = None, purge: Collection[str] = ()
          ) -> tuple[list[RetentionDecision], list[dict[str, Any]],
                     dict[tuple[str, str], BuildRecord]]:
    """(decisions, skipped recipes) for the published recipes (or only ``recipes``).

    Every prune the retention rules choose is then put to the deletion gate, image by
    image and region by region; one it would keep (``latest`` names it, a use, a region
    that cannot be read) is planned as a keep with the gate's reason, so the dry run
    shows what the run does."""
    now = now or datetime.now(UTC)
    gate = gate or Gate(env, dry_run=True)
    only = set(recipes or [])
    policies: dict[str, RetentionPolicy] = {}
    skipped: list[dict[str, Any]] = []
    for record in env.store.all_current():
        if only and record["name"] not in only:
            continue
        try:
            policies[record["name"]] = (
                RetentionPolicy.purging() if record["name"] in purge
                else RetentionPolicy.of(recipe_from_document(record["document"])))
        except RecipeInvalid as err:
            skipped.append({"recipe": record["name"], "reason": f"invalid recipe: {err}"})
    for name in sorted(only - set(policies) - {s["recipe"] for s in skipped}):
        skipped.append({"recipe": name, "reason": "not published"})
    histories: dict[str, list[BuildRecord]] = {name: env.catalog.history(name)
                                               for name in sorted(policies)}
    records = {(b["recipe"], b["build_id"]): b for builds in histories.values() for b in builds}
    in_use, unknown = _in_use(env, gate, [b for b in records.values()
                                          if b.get("status") == AVAILABLE])
    chosen = [_unless_unknown(env, d, unknown)
              for name in sorted(policies)
              for d in plan_one(name, histories[name], policies[name], now=now,
                                in_use=in_use)]
    # Every build retention would prune: its images and snapshots, one listing per region.
    builds: dict[str, set[str]] = {}
    for d in chosen:
        if d.action == PRUNE:
            for region in _regions(env, d):
                builds.setdefault(region, set()).add(d.build_id)
    for region, build_ids in sorted(builds.items()):
        try:
            gate.prefetch_builds(region, build_ids)
        except Exception as err:  # each image is then read by id, and fails closed there
            log.warning("listing the builds' images in %s failed: %s", region, err)
    decisions = [_gated(env, gate, d, records.get((d.recipe, d.build_id))) for d in chosen]
    return decisions, skipped, records


def _gated(env: StepEnv, gate: Gate, decision: RetentionDecision,
           record: Mapping[str, Any] | None) -> RetentionDecision:
    """A prune becomes a keep when the deletion gate keeps any of the build's images."""
    if decision.action != PRUNE:
        return decision
    regions = _regions(env, decision)
    owner = Owner(decision.recipe, decision.build_id, stack=env.stack_name or None)
    for region, image_id in sorted(regions.items()):
        try:
            image = gate.image(region, image_id, decision.build_id)
        except Exception as err:  # an unreachable region keeps the build
            return replace(decision, action=KEEP,
                           reason=f"could not read {image_id} in {region}: "
                                  f"{describe_failure(err)}; kept")
        if image is None:  # already gone (an interrupted earlier prune)
            continue
        facts = gate.image_facts(image, region, owner, record, retention_chose=True)
        verdict = decide_image(facts, decision.reason)
        if not verdict.delete:
            label = "" if region == env.region else f" ({image_id} in {region})"
            return replace(decision, action=KEEP, reason=f"{verdict.reason}{label}; kept")
    return decision


def _unless_unknown(env: StepEnv, decision: RetentionDecision, unknown: dict[str, str]) -> RetentionDecision:
    """A prune becomes a keep when usage in one of the build's regions is unknown."""
    if decision.action != PRUNE:
        return decision
    reasons = [unknown[region] for region in sorted(_regions(env, decision))
               if region in unknown]
    if not reasons:
        return decision
    return replace(decision, action=KEEP, reason="; ".join(reasons) + "; kept")


def _in_use(env: StepEnv, gate: Gate, builds: Sequence[Mapping[str, Any]]
            ) -> tuple[dict[str, list[str]], dict[str, str]]:
    """({image id: [uses]}, {region: why its usage is unknown})."""
    by_region: dict[str, set[str]] = {}
    for build in builds:
        images = build.get("images") or {env.region: build.get("image_id") or ""}
        for region, image_id in images.items():
            if image_id:
                by_region.setdefault(region, set()).add(image_id)
    found: dict[str, list[str]] = {}
    unknown: dict[str, str] = {}
    for region, ids in sorted(by_region.items()):
        usage = gate.usage(region, ids)
        found.update({image: uses for image, uses in usage.uses.items() if image in ids})
        if usage.unknown:
            log.warning("image usage in %s is unknown, nothing there is pruned: %s",
                        region, usage.unknown)
            unknown[region] = usage.unknown
    return found, unknown


def prune(event: PruneEvent, env: StepEnv, *, purge: Collection[str] = ()
          ) -> dict[str, Any]:
    """Input (all optional): {dry_run: bool, recipes: [names]}. Returns the report.

    ``purge`` (``amiforge retire --purge``, never the schedule): those recipes lose every
    image not in use, the newest too."""
    dry_run = bool(event.get("dry_run"))
    gate = Gate(env, dry_run=dry_run)
    decisions, skipped, records = _plan(env, event.get("recipes"), gate=gate, purge=purge)
    entries = []
    for decision in decisions:
        entry = decision.as_dict()
        if dry_run or decision.action not in (PRUNE, DEPRECATE):
            entry["outcome"] = "planned" if decision.action in (PRUNE, DEPRECATE) else "kept"
        else:
            try:
                entry["outcome"] = (_prune(env, gate, decision,
                                           records.get((decision.recipe, decision.build_id)))
                                    if decision.action == PRUNE
                                    else _deprecate(env, decision))
            except AmiforgeError as err:
                log.warning("retention of %s failed: %s", decision.image_id, err)
                entry["outcome"] = f"error: {err}"
        entries.append(entry)
    errors = [e for e in entries if str(e["outcome"]).startswith("error")]
    return {"dry_run": dry_run, "decisions": entries, "skipped": skipped,
            "not_visible": list(CANNOT_SEE),
            "pruned": sum(1 for e in entries if e["outcome"] == "pruned"),
            "deprecated": sum(1 for e in entries if e["outcome"] == "deprecated"),
            "errors": len(errors)}


def _regions(env: StepEnv, decision: RetentionDecision) -> dict[str, str]:
    return dict(decision.images) or {env.region: decision.image_id}


def _prune(env: StepEnv, gate: Gate, decision: RetentionDecision,
           record: BuildRecord | None = None) -> str:
    """Remove the build's image in every region through the deletion gate, then, in one
    pass per region, the build's snapshots no kept image stands on: those behind the
    image just deregistered and any an interrupted earlier run left (its image gone, so
    EC2 no longer says which snapshots were behind it). What fails stays tagged, and the
    next run's listing finds it again: the retry is only for what failed.

    The record and the images come from this run's plan (the same gate's listing, kept
    up to date as it removes): nothing is read twice. The record is marked PRUNED only
    if it is still AVAILABLE (a conditional update)."""
    if record is None:
        record = env.catalog.get(decision.recipe, decision.build_id)
    owner = Owner(decision.recipe, decision.build_id, stack=env.stack_name or None)
    regions = _regions(env, decision)
    kept: list[str] = []
    for region, image_id in sorted(regions.items()):
        image = gate.image(region, image_id, decision.build_id)
        rows = gate.remove_images(region, [image] if image else [], owner, record,
                                  decision.reason, retention_chose=True, dry_run=False,
                                  snapshots=False)
        kept += [f"{r['resource']}: {r['reason']}" for r in rows
                 if r["kind"] == "image" and r["action"] == "keep"]
        removed = {r["resource"] for r in rows
                   if r["kind"] == "image" and r["action"] == "deregister"}
        # Once something of the build is kept, only the removed images' own snapshots go.
        only = None if not kept else {s for i in ([image] if image else [])
                                      if i["ImageId"] in removed
                                      for s in ec2_api.snapshot_ids(i)}
        if only is None or only:
            gate.remove_snapshots(region, owner, record, decision.reason, only=only,
                                  removed=removed, dry_run=False)
    if kept:
        return "kept: " + "; ".join(kept)
    marked = env.catalog.update(decision.recipe, decision.build_id, only_if_status=AVAILABLE,
                                status=PRUNED, pruned_at=now_iso(),
                                prune_reason=decision.reason, remove=("available_recipe",))
    return "pruned" if marked else "pruned (record was no longer AVAILABLE)"


def _deprecate(env: StepEnv, decision: RetentionDecision) -> str:
    when = parse_time(decision.deprecate_at or "")
    for region, image_id in sorted(_regions(env, decision).items()):
        ec2_lifecycle.enable_deprecation(env.client("ec2", region), image_id, when)
    env.catalog.update(decision.recipe, decision.build_id, only_if_status=AVAILABLE,
                       deprecate_at=decision.deprecate_at)
    return "deprecated"
