"""Sweep: find what builds left behind, by tag, and remove what belongs to no live build.

The scheduled Sweep function and ``amiforge sweep [--dry-run]`` run :func:`sweep`:

1. In the home region and every region a published recipe copies to, list (tag-filtered,
   never an account-wide scan) live builder and test instances (``amiforge:role=builder``
   or ``tester``), and images and snapshots carrying ``amiforge:build-id``, and the home
   region's build stacks (``amiforge-build-*``, whose DeleteStack can fail or never be
   reached). Group them by build.
2. For each such build, and each BUILDING record of a published recipe (a build can die
   before it creates anything), read its catalog record and, if it claims to be
   BUILDING, its execution's status, and let :func:`amiforge.core.sweep_judge.judge` decide.
3. ``leave``: nothing is touched. ``clean``: builders are terminated, images deregistered
   snapshots and build stacks deleted, except an AVAILABLE build's own image(s) and
   their snapshots.
   ``fail``: the execution is stopped if it still runs, the record is marked FAILED with
   the reason (a conditional write: if the build finished meanwhile, it is judged
   again), the failure is notified, and everything is cleaned.

4. Every published recipe's ``latest`` parameter that names an image which no longer
   exists is pointed at the newest AVAILABLE image (``steps/latest_repair.py``).

Images and snapshots are removed only through the deletion gate (``steps/gate.py``);
one it keeps is listed with the reason (for an image in use, the use). Regions are
swept one at a time: a region that cannot be listed is reported as an error row and the
others are swept. The report lists every resource with its action and reason; a dry run
lists the same and changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from amiforge.aws import cloudformation as cfn_api
from amiforge.aws import ec2 as ec2_api
from amiforge.aws import ec2_lifecycle, messaging
from amiforge.aws import stepfunctions as sfn_api
from amiforge.aws.catalog import AVAILABLE
from amiforge.aws.in_flight import InFlight
from amiforge.core import sweep_judge
from amiforge.core.deletion import Owner
from amiforge.core.events import SweepEvent
from amiforge.core.model import DEFAULT_TIMEOUT_MINUTES, MAX_APPROVAL_TIMEOUT_HOURS
from amiforge.core.parse import recipe_from_document
from amiforge.core.statuses import IN_FLIGHT, BuildStatus
from amiforge.core.tags import BUILD_ID, RECIPE
from amiforge.errors import AmiforgeError, RecipeInvalid
from amiforge.steps.build_stack import STACK_PREFIX as BUILD_STACK_PREFIX
from amiforge.steps.env import StepEnv
from amiforge.steps.gate import Gate, describe_failure
from amiforge.steps.latest_repair import repair_latest

log = logging.getLogger(__name__)

Described = dict[str, Any]  # an instance, image, snapshot or stack as EC2/CFN describe it
Record = Mapping[str, Any]  # a catalog record


@dataclass
class Leftovers:
    """What one build has in the account, per region."""

    recipe: str
    build_id: str
    instances: dict[str, list[Described]] = field(default_factory=lambda: defaultdict(list))
    images: dict[str, list[Described]] = field(default_factory=lambda: defaultdict(list))
    snapshots: dict[str, list[Described]] = field(default_factory=lambda: defaultdict(list))
    stacks: list[Described] = field(default_factory=list)  # build stacks, in the home region


def sweep_regions(env: StepEnv, recipes: list[dict[str, Any]]) -> list[str]:
    """The home region first, then every region a published recipe copies its image to."""
    regions = [env.region]
    for record in recipes:
        regions.extend((record.get("document") or {}).get("image", {}).get("regions") or [])
    return list(dict.fromkeys(regions))


def find_leftovers(env: StepEnv, regions: list[str]
                   ) -> tuple[dict[tuple[str, str], Leftovers], dict[str, str]]:
    """(leftovers by (recipe, build id), {region: why it could not be listed}). A region
    that cannot be listed (unreachable, denied) is reported; the others are swept."""
    found: dict[tuple[str, str], Leftovers] = {}
    failed: dict[str, str] = {}

    def slot(resource: dict[str, Any]) -> Leftovers | None:
        tags = ec2_api.tags_of(resource)
        recipe, build_id = tags.get(RECIPE), tags.get(BUILD_ID)
        if not recipe or not build_id:
            return None
        return found.setdefault((recipe, build_id), Leftovers(recipe, build_id))

    # CloudFormation builders' stacks (a DeleteStack can fail, or never be reached).
    for stack in cfn_api.stacks_named(env.client("cloudformation"), BUILD_STACK_PREFIX):
        if stack["StackStatus"] == "DELETE_IN_PROGRESS":
            continue
        if (left := slot(stack)) is not None:
            left.stacks.append(stack)
    for region in regions:
        try:
            ec2 = env.client("ec2", region)
            listed = (ec2_lifecycle.builders(ec2), ec2_lifecycle.build_images(ec2),
                      ec2_lifecycle.build_snapshots(ec2))
        except Exception as err:  # this region only: the others are still swept
            log.warning("sweep cannot list %s: %s", region, err)
            failed[region] = describe_failure(err)
            continue
        instances, images, snapshots = listed
        for instance in instances:
            if (left := slot(instance)) is not None:
                left.instances[region].append(instance)
        for image in images:
            if (left := slot(image)) is not None:
                left.images[region].append(image)
        for snapshot in snapshots:
            if (left := slot(snapshot)) is not None:
                left.snapshots[region].append(snapshot)
    return found, failed


def _execution_status(env: StepEnv, record: Mapping[str, Any]) -> str | None:
    arn = record.get("execution_arn")
    if not arn and env.state_machine_arn:
        arn = env.state_machine_arn.replace(":stateMachine:", ":execution:") + \
            f":{record['build_id']}"
    if not arn:
        return None
    return sfn_api.status_of(env.client("stepfunctions"), arn)


def _budget(env: StepEnv, record: Mapping[str, Any]) -> timedelta:
    """How long the record's build may legitimately run: its recipe's budget if the
    version it was built from can be read, else the longest one."""
    version = env.store.version(record["recipe"], record["recipe_hash"]) \
        if record.get("recipe_hash") and env.recipes_table else None
    recipe = None
    if version is not None:
        with contextlib.suppress(RecipeInvalid):  # an unreadable version: the longest budget
            recipe = recipe_from_document(version["document"])
    if recipe is not None:
        minutes = sweep_judge.recipe_budget_minutes(recipe,
                                              image_timeout_minutes=env.image_timeout_minutes,
                                              seconds_per_minute=env.seconds_per_minute)
    else:
        # An unreadable version may have had an approval gate: never sweep a build
        # still waiting within the longest approval timeout.
        minutes = sweep_judge.budget_minutes(timeout_minutes=max(DEFAULT_TIMEOUT_MINUTES.values()),
                                       retries=1, image_timeout_minutes=env.image_timeout_minutes,
                                       seconds_per_minute=env.seconds_per_minute,
                                       approval_minutes=MAX_APPROVAL_TIMEOUT_HOURS * 60)
    return timedelta(seconds=minutes * env.seconds_per_minute)


def _judge(env: StepEnv, left: Leftovers, now: datetime) -> tuple[sweep_judge.Verdict, Record | None]:
    record = env.catalog.get(left.recipe, left.build_id)
    status, budget = None, timedelta(0)
    if record is not None and record.get("status") in IN_FLIGHT:
        status, budget = _execution_status(env, record), _budget(env, record)
    return sweep_judge.judge(record, status, now=now, budget=budget), record


def _kept_images(record: Mapping[str, Any] | None) -> set[str]:
    if not record or record.get("status") != AVAILABLE:
        return set()
    return {i for i in [record.get("image_id"), *(record.get("images") or {}).values()] if i}


def _actions(left: Leftovers, verdict: sweep_judge.Verdict, record: Mapping[str, Any] | None,
             home: str) -> list[dict[str, Any]]:
    """Every resource of the build with what to do with it."""
    base = {"recipe": left.recipe, "build_id": left.build_id}
    out: list[dict[str, Any]] = []
    stacks = [{**base, "region": home, "kind": "stack", "resource": stack["StackName"],
               "action": "leave" if verdict.action == sweep_judge.LEAVE else "delete",
               "reason": verdict.reason} for stack in left.stacks]
    if verdict.action == sweep_judge.LEAVE:
        out += stacks
        for region in sorted({*left.instances, *left.images, *left.snapshots}):
            for kind, items, key in (("instance", left.instances, "InstanceId"),
                                     ("image", left.images, "ImageId"),
                                     ("snapshot", left.snapshots, "SnapshotId")):
                out += [{**base, "region": region, "kind": kind, "resource": r[key],
                         "action": "leave", "reason": verdict.reason}
                        for r in items.get(region, [])]
        return out
    if verdict.action == sweep_judge.FAIL:
        if verdict.stop:
            out.append({**base, "region": "", "kind": "execution",
                        "resource": (record or {}).get("execution_arn", ""),
                        "action": "stop", "reason": verdict.reason})
        out.append({**base, "region": "", "kind": "record", "resource": left.build_id,
                    "action": "mark-failed", "reason": verdict.reason})
    for region in sorted(left.instances):
        for instance in left.instances.get(region, []):
            out.append({**base, "region": region, "kind": "instance",
                        "resource": instance["InstanceId"], "action": "terminate",
                        "reason": verdict.reason})
    return out + stacks


def _image_rows(gate: Gate, left: Leftovers, verdict: sweep_judge.Verdict,
                record: Mapping[str, Any] | None, *, dry_run: bool) -> list[dict[str, Any]]:
    """Images and snapshots of an ended build, each as the deletion gate judges it.

    The build's own AVAILABLE image(s) and their snapshots are not even asked about
    (retention owns them); everything else the build left is, region by region."""
    base = {"recipe": left.recipe, "build_id": left.build_id}
    kept = _kept_images(record)
    owner = Owner(left.recipe, left.build_id, stack=gate.env.stack_name or None)
    if verdict.action == sweep_judge.FAIL:  # the record is marked FAILED before anything goes
        record = {**(record or {}), "status": BuildStatus.FAILED}
    regions = sorted({*left.images, *left.snapshots})
    out: list[dict[str, Any]] = []
    for region in regions:
        kept_snapshots = {s for image in left.images.get(region, [])
                          if image["ImageId"] in kept for s in ec2_api.snapshot_ids(image)}
        if kept and region == gate.env.region:
            kept_snapshots.update((record or {}).get("snapshot_ids") or [])
        candidates = [i for i in left.images.get(region, []) if i["ImageId"] not in kept]
        try:
            rows = gate.remove_images(region, candidates, owner, record, verdict.reason,
                                      dry_run=dry_run)
            handled = {r["resource"] for r in rows}
            rest = {s["SnapshotId"] for s in left.snapshots.get(region, [])} - handled \
                - kept_snapshots
            if rest:
                removed = {r["resource"] for r in rows if r["action"] == "deregister"}
                rows += gate.remove_snapshots(region, owner, record, verdict.reason,
                                              only=rest, removed=removed, dry_run=dry_run)
        except Exception as err:  # this region's images only; the others go on
            log.warning("sweep: images of %s in %s: %s", left.build_id, region, err)
            rows = [{"kind": "region", "resource": region, "region": region,
                     "action": "error", "reason": describe_failure(err), "outcome": "error"}]
        out += [{**base, **row} for row in rows]
    return out


def sweep(event: SweepEvent, env: StepEnv) -> dict[str, Any]:
    """Input (all optional): {dry_run: bool}. Returns the report.

    Leave actions are reported only for resources (a live build with nothing created yet
    is not listed)."""
    dry_run = bool(event.get("dry_run"))
    now = datetime.now(UTC)
    recipes = list(env.store.all_current()) if env.recipes_table else []
    regions = sweep_regions(env, recipes)
    leftovers, unlisted = find_leftovers(env, regions)
    entries: list[dict[str, Any]] = [
        {"recipe": "", "build_id": "", "region": region, "kind": "region", "resource": region,
         "action": "error", "reason": reason, "outcome": "error"}
        for region, reason in sorted(unlisted.items())]
    gate = Gate(env, dry_run=dry_run)
    # A build can die before it creates anything (stopped during Resolve or Launch): its
    # BUILDING (or STARTING) record is judged too, with nothing to clean.
    for recipe in recipes:
        for build in InFlight(env.catalog).live(recipe["name"]):
            if build.get("status") in IN_FLIGHT:
                leftovers.setdefault((recipe["name"], build["build_id"]),
                                     Leftovers(recipe["name"], build["build_id"]))
    judged: dict[tuple[str, str], tuple[sweep_judge.Verdict, Record | None] | AmiforgeError] = {}
    for key in sorted(leftovers):
        try:
            judged[key] = _judge(env, leftovers[key], now)
        except AmiforgeError as err:
            judged[key] = err
    _prefetch_usage(gate, leftovers, judged)
    for key in sorted(leftovers):
        left = leftovers[key]
        try:
            outcome = judged[key]
            if isinstance(outcome, AmiforgeError):
                raise outcome
            verdict, record = outcome
            actions = _actions(left, verdict, record, env.region)
            if verdict.action != sweep_judge.LEAVE and dry_run:
                actions += _image_rows(gate, left, verdict, record, dry_run=True)
            elif verdict.action != sweep_judge.LEAVE:
                verdict, record, actions = _carry_out(env, gate, left, verdict, record,
                                                      actions, now)
        except AmiforgeError as err:
            log.warning("sweeping build %s failed: %s", left.build_id, err)
            actions = [{"recipe": left.recipe, "build_id": left.build_id, "region": "",
                        "kind": "build", "resource": left.build_id, "action": "error",
                        "reason": str(err), "outcome": "error"}]
        for action in actions:
            action.setdefault("outcome", "planned" if dry_run or action["action"] == "leave"
                              else "done")
        entries.extend(actions)
    # Last: a latest parameter naming an image that no longer exists is pointed back at
    # the newest AVAILABLE one (or reported).
    entries.extend(repair_latest(env, recipes, dry_run=dry_run, skip=set(unlisted)))
    summary: dict[str, int] = defaultdict(int)
    for entry in entries:
        summary[entry["action"]] += 1
    return {"dry_run": dry_run, "regions": regions, "actions": entries,
            "summary": dict(sorted(summary.items())),
            "errors": sum(1 for e in entries if e.get("outcome") == "error")}


def _prefetch_usage(gate: Gate, leftovers: dict[tuple[str, str], Leftovers],
                    judged: dict[tuple[str, str], Any]) -> None:
    """One usage scan per region for every image the sweep may remove there."""
    by_region: dict[str, set[str]] = defaultdict(set)
    for key, outcome in judged.items():
        if isinstance(outcome, AmiforgeError) or outcome[0].action == sweep_judge.LEAVE:
            continue
        kept = _kept_images(outcome[1])
        for region, images in leftovers[key].images.items():
            by_region[region].update(i["ImageId"] for i in images if i["ImageId"] not in kept)
    for region, ids in sorted(by_region.items()):
        gate.prefetch(region, ids)


def _carry_out(env: StepEnv, gate: Gate, left: Leftovers, verdict: sweep_judge.Verdict,
               record: Mapping[str, Any] | None, actions: list[dict[str, Any]],
               now: datetime) -> tuple[sweep_judge.Verdict, Record | None, list[dict[str, Any]]]:
    if verdict.action == sweep_judge.FAIL:
        if verdict.stop and (record or {}).get("execution_arn"):
            _stop(env, record["execution_arn"], verdict.reason)  # type: ignore[index]
        marked = env.catalog.mark_failed(left.recipe, left.build_id,
                                         reason=f"swept: {verdict.reason}")
        if not marked:
            # The build finished meanwhile: judge it again from its new record.
            verdict, record = _judge(env, left, now)
            actions = _actions(left, verdict, record, env.region)
            if verdict.action != sweep_judge.CLEAN:
                return verdict, record, actions
        else:
            messaging.notify(env.client("sns"), env.topic_arn,
                             f"amiforge: {left.recipe} build failed",
                             {"status": BuildStatus.FAILED, "recipe": left.recipe,
                              "build_id": left.build_id, "reason": f"swept: {verdict.reason}"})
    for action in actions:
        action["outcome"] = _do(env, action)
    # Then the images and snapshots, each through the deletion gate.
    actions += _image_rows(gate, left, verdict, record, dry_run=False)
    return verdict, record, actions


def _stop(env: StepEnv, arn: str, reason: str) -> None:
    sfn_api.stop(env.client("stepfunctions"), arn, error="amiforge.Swept",
                 cause=reason[:32000])


def _do(env: StepEnv, action: dict[str, Any]) -> str:
    kind, resource = action["kind"], action["resource"]
    if kind in ("execution", "record"):
        return "done"
    ec2 = env.client("ec2", action["region"])
    try:
        if kind == "stack":
            cfn_api.delete(env.client("cloudformation", action["region"]), resource)
        elif kind == "instance":
            ec2_api.terminate(ec2, [resource])
    except AmiforgeError as err:
        log.warning("sweep: %s %s: %s", kind, resource, err)
        return "error"
    return "done"
