"""``amiforge rollback RECIPE [--to BUILD_ID]`` and ``amiforge release BUILD_ID``.

Rollback takes `latest` away from a bad image and gives it back to an earlier one; release
undoes that. What is revoked and where `latest` lands is the pure
:func:`amiforge.core.rollback.plan_rollback`; this module carries it out in the order
that keeps `latest` right (design invariant 2: the catalog first, the SSM parameter
last, never naming a REVOKED image):

1. **Check** (exit 2, nothing written): the recipe is known, there is an earlier
   AVAILABLE build (or ``--to`` names one), and its image still exists in the home
   region (a parameter naming a deregistered image launches nothing).
2. **Catalog**: each build ranking above the target becomes REVOKED (a conditional
   write: only while AVAILABLE, so a build pruned or revoked meanwhile refuses the whole
   rollback), with the reason, who (the caller's ARN) and when; it leaves the sparse
   ``available`` index, so ``amiforge latest`` and ``Custom::LatestAmi`` answer the
   target from here on. The target's record notes the rollback, conditionally on it
   still being AVAILABLE. Nothing is deleted: the REVOKED image stays for ``release``,
   and the deletion gate keeps a REVOKED build's images (only an ended build's go).
3. **SSM, last**: ``/amiforge/<recipe>/latest`` is set, home region first, to what the
   rule now names (the target, or a build that became AVAILABLE meanwhile) in every
   region that build has an image in; in a region where a revoked build had a copy and
   the new `latest` has none, a parameter still naming the revoked image is deleted
   (consumers there fail loudly rather than launch a revoked image).
4. **Launch templates**: each template a revoked build's rollout moved
   (``release.launch_templates``) points back at the version that was default before,
   unless someone moved it since (the report's ``launch_templates`` says which).
5. **Notify** (SNS, as a release does) and report. A notification that fails does not
   undo a rollback that took effect; the report says ``notified: false``.

If step 3 fails, the rollback is undone: the revoked builds become AVAILABLE again
first (so the parameters, which then still name the old image in some regions, name an
AVAILABLE one), then every parameter moved is put back (``ssm.restore_latest``, only
where it still holds what this run wrote). The records keep a ``rollback_undone`` event.

Release is the mirror: REVOKED -> AVAILABLE (conditional), then the parameters follow
the rule (the released build is `latest` again only if it ranks first); if a parameter
write fails, the parameters are put back first and the build is REVOKED again, so a
parameter never names a REVOKED image.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import messaging
from amiforge.aws import rollbacks as catalog_moves
from amiforge.aws import ssm as ssm_api
from amiforge.aws.catalog import now_iso
from amiforge.aws.identity import caller
from amiforge.core import rollback as rules
from amiforge.core.latest import choose_latest
from amiforge.core.rollback import AVAILABLE, REVOKED, RollbackPlan, plan_rollback
from amiforge.errors import AmiforgeError, InvalidInput, OperationFailed
from amiforge.ops.lookups import find_build, require_known
from amiforge.steps.env import StepEnv
from amiforge.steps.latest import published_hash
from amiforge.steps.rollout_back import revert_templates

log = logging.getLogger(__name__)
EV_RELEASE_UNDONE = "release_undone"
MAX_REASON = 1024


@dataclass
class Move:
    """One ``latest`` parameter changed: ``image_id`` None means it was deleted."""

    region: str
    previous: str | None
    image_id: str | None


def images_of(build: Mapping[str, Any], home: str) -> dict[str, str]:
    """Region -> image id of a catalog record (an old record has only ``image_id``)."""
    images = {str(r): str(i) for r, i in (build.get("images") or {}).items() if i}
    if not images and build.get("image_id"):
        images[home] = str(build["image_id"])
    return images


def _home_image_exists(env: StepEnv, build: Mapping[str, Any]) -> str:
    """The build's home-region image id; raises InvalidInput if it no longer exists."""
    image_id = images_of(build, env.region).get(env.region) or build.get("image_id")
    described = (ec2_api.describe_image(env.client("ec2"), str(image_id))
                 if image_id else None)
    if described is None or described.get("State") != "available":
        raise InvalidInput(
            f"the image {image_id} of build {build['build_id']} no longer exists in "
            f"{env.region}: `latest` cannot name it",
            hint=f"choose another build with --to (see `amiforge history {build['recipe']}`)")
    return str(image_id)


def _regions(home: str, *maps: Mapping[str, str]) -> list[str]:
    """The home region first (what `amiforge latest` answers), then the others."""
    others = sorted({region for images in maps for region in images} - {home})
    return [home, *others]


def winner_now(env: StepEnv, recipe: str, *, revoked: Iterable[str] = (),
               released: Mapping[str, Any] | None = None) -> Mapping[str, Any] | None:
    """What the `latest` rule names now. The ``available`` index is eventually
    consistent on AWS, so it may still list a build this run just revoked, or not yet
    list the one it released: those two facts, known for sure here, override it."""
    gone = set(revoked) | ({released["build_id"]} if released else set())
    builds: list[Mapping[str, Any]] = [b for b in env.catalog.available(recipe)
                                       if b.get("build_id") not in gone]
    if released is not None:
        builds.append({**released, "status": AVAILABLE})
    return choose_latest(builds, published_hash(env, recipe))


def move_latest(env: StepEnv, recipe: str, *, revoked_images: Iterable[str] = (),
                also: Iterable[Mapping[str, str]] = (), moved: list[Move],
                revoked: Iterable[str] = (),
                released: Mapping[str, Any] | None = None) -> Mapping[str, Any] | None:
    """Make ``/amiforge/<recipe>/latest`` name what the rule names now
    (:func:`winner_now`), in every region its build has an image in; in the regions of
    ``also`` (the revoked builds' images) where it has none, delete a parameter that
    names one of ``revoked_images``. ``moved`` grows with each change, so a caller that
    fails can put them back. Returns the winner's record."""
    winner = winner_now(env, recipe, revoked=revoked, released=released)
    want = images_of(winner, env.region) if winner else {}
    bad = set(revoked_images)
    name = ssm_api.latest_parameter_name(recipe)
    build_id = winner["build_id"] if winner else "-"
    for region in _regions(env.region, want, *also):
        ssm = env.client("ssm", region)
        previous = ssm_api.get_value(ssm, name)
        image_id = want.get(region)
        if image_id and previous != image_id:
            ssm_api.put_latest(ssm, recipe, image_id,
                               description=f"amiforge: newest image of recipe {recipe} "
                                           f"(build {build_id})",
                               stack=env.stack_name or None)
            moved.append(Move(region, previous, image_id))
        elif not image_id and previous in bad:
            ssm_api.delete_parameter(ssm, name)
            moved.append(Move(region, previous, None))
    return winner


def _put_back(env: StepEnv, recipe: str, moved: list[Move], why: str) -> list[str]:
    """Every parameter in ``moved`` back to what it was (where it still holds what was
    written); the errors, as lines, for the caller's message."""
    errors = []
    for m in reversed(moved):
        try:
            ssm_api.restore_latest(env.client("ssm", m.region), recipe,
                                   expected=m.image_id,  # type: ignore[arg-type]
                                   previous=m.previous, description=f"amiforge: put back "
                                   f"({why})", stack=env.stack_name or None)
        except AmiforgeError as err:
            errors.append(f"{m.region}: {err}")
    return errors


def _notify(env: StepEnv, subject: str, message: dict[str, Any]) -> bool:
    try:
        messaging.notify(env.client("sns"), env.topic_arn, subject, message)
    except AmiforgeError as err:  # the change took effect; the report says it was not told
        log.warning("notification failed: %s", err)
        return False
    return True


def _parameters(moved: list[Move]) -> list[dict[str, Any]]:
    return [asdict(m) for m in moved]


def check_reason(reason: str | None) -> None:
    """A reason is stored on records and sent to SNS: one line, bounded."""
    if reason is None:
        return
    if not reason.strip() or len(reason) > MAX_REASON or any(
            ord(c) < 32 for c in reason):
        raise InvalidInput(f"--reason must be one line of 1 to {MAX_REASON} characters "
                           f"(got {len(reason)} characters)",
                           hint="say briefly why; details belong in your ticket system")


def plan(env: StepEnv, recipe: str, *, to: str | None = None) -> RollbackPlan:
    """Check everything and decide (no writes); raises InvalidInput (exit 2)."""
    require_known(env, recipe)
    builds = env.catalog.history(recipe)
    decided = plan_rollback(recipe, builds, published_hash(env, recipe), to=to)
    _home_image_exists(env, decided.target)
    return decided


def rollback(env: StepEnv, recipe: str, *, to: str | None = None, reason: str | None = None,
             by: str | None = None) -> dict[str, Any]:
    """Roll ``recipe``'s `latest` back (see the module docstring); returns the report."""
    check_reason(reason)
    decided = plan(env, recipe, to=to)
    by = by or caller(env.client("sts"))
    reason = reason or f"rolled back by {by}"
    at = now_iso()
    target_id = str(decided.target["build_id"])
    revoked: list[Mapping[str, Any]] = []

    def undo_catalog(why: str) -> list[str]:
        errors = []
        for build in reversed(revoked):
            try:
                catalog_moves.unrevoke(env.catalog, recipe, build["build_id"], event=rules.event(
                    rules.EV_UNDONE, at=now_iso(), by=by, reason=why))
            except AmiforgeError as err:
                errors.append(f"{build['build_id']}: {err}")
        return errors

    for build in decided.revoke:
        if not catalog_moves.revoke(env.catalog, recipe, build["build_id"], reason=reason, by=by, at=at,
                                  rolled_back_to=target_id,
                                  event=rules.event(rules.EV_REVOKED, at=at, by=by,
                                                    reason=reason, builds=[target_id])):
            undo_catalog(f"rollback stopped: build {build['build_id']} changed meanwhile")
            raise OperationFailed(
                f"build {build['build_id']} of {recipe!r} is no longer AVAILABLE (it changed "
                "while the rollback ran): nothing was rolled back",
                hint=f"look at `amiforge history {recipe}` and run the rollback again")
        revoked.append(build)
    if not catalog_moves.note_rollback(env.catalog, recipe, target_id, event=rules.event(
            rules.EV_TARGET, at=at, by=by, reason=reason, builds=decided.revoked_ids)):
        undo_catalog(f"rollback stopped: target {target_id} changed meanwhile")
        raise OperationFailed(f"build {target_id} of {recipe!r} is no longer AVAILABLE (it "
                              "changed while the rollback ran): nothing was rolled back",
                              hint=f"look at `amiforge history {recipe}`")
    moved: list[Move] = []
    bad = {image for b in decided.revoke for image in images_of(b, env.region).values()}
    also = [images_of(b, env.region) for b in decided.revoke]
    try:
        gone = decided.revoked_ids
        winner = move_latest(env, recipe, revoked_images=bad, also=also, moved=moved,
                             revoked=gone)
        again = winner_now(env, recipe, revoked=gone)
        if winner and again and again["build_id"] != winner["build_id"]:
            # A build became AVAILABLE while this one wrote: the rule's answer again.
            winner = move_latest(env, recipe, revoked_images=bad, also=also, moved=moved,
                                 revoked=gone)
    except Exception as err:
        why = f"rollback of {recipe} failed: {err}"
        problems = undo_catalog(why) + _put_back(env, recipe, moved, why)
        try:  # the target's history says so too (bookkeeping only: nothing depends on it)
            catalog_moves.note_rollback(env.catalog, recipe, target_id, event=rules.event(
                rules.EV_UNDONE, at=now_iso(), by=by, reason=why,
                builds=decided.revoked_ids))
        except AmiforgeError as note:
            log.warning("could not note the undone rollback on %s: %s", target_id, note)
        left = f"; could not undo: {'; '.join(problems)}" if problems else ""
        raise OperationFailed(
            f"rollback of {recipe!r} failed while moving `latest` ({err}) and was undone: "
            f"`latest` still names {decided.current.get('image_id')} "
            f"(build {decided.current['build_id']}){left}",
            hint="fix the cause (the region named) and run the rollback again") from err
    # The launch templates a revoked build's rollout moved point back at the version that
    # was default before (steps/rollout_back.py), where nobody moved them since.
    templates = [entry for b in decided.revoke
                 for entry in revert_templates(env, (b.get("rollout") or {}).get("templates")
                                               or [])]
    image_id = images_of(decided.target, env.region).get(env.region)
    report = {
        "recipe": recipe, "build_id": target_id, "image_id": image_id,
        "images": images_of(decided.target, env.region),
        "previous_build_id": decided.current["build_id"],
        "revoked": [{"build_id": b["build_id"], "image_id": b.get("image_id"),
                     "status": REVOKED} for b in decided.revoke],
        "latest_build_id": (winner or {}).get("build_id"),
        "reason": reason, "by": by, "at": at, "parameters": _parameters(moved),
        "launch_templates": templates}
    report["notified"] = _notify(
        env, f"amiforge: {recipe} rolled back to {image_id}",
        {"status": REVOKED, "event": "rollback", **{k: v for k, v in report.items()
                                                    if k != "parameters"}})
    return report


def release(env: StepEnv, build_id: str, *, reason: str | None = None,
            by: str | None = None) -> dict[str, Any]:
    """Undo a rollback: the REVOKED build ``build_id`` becomes AVAILABLE again, and
    `latest` again if it ranks first. Refuses (exit 2) a build that is not REVOKED."""
    check_reason(reason)
    record = find_build(env, build_id)
    recipe = record["recipe"]
    if record.get("status") != REVOKED:
        raise InvalidInput(f"build {build_id} is {record.get('status')}, not REVOKED: only a "
                           "build taken from `latest` by `amiforge rollback` can be released",
                           hint=f"see `amiforge history {recipe}`")
    _home_image_exists(env, record)
    by = by or caller(env.client("sts"))
    reason = reason or f"released by {by}"
    at = now_iso()
    if not catalog_moves.unrevoke(env.catalog, recipe, build_id, event=rules.event(
            rules.EV_RELEASED, at=at, by=by, reason=reason,
            builds=[str(record["rolled_back_to"])] if record.get("rolled_back_to") else [])):
        raise InvalidInput(f"build {build_id} is no longer REVOKED (it changed meanwhile): "
                           "nothing was released", hint=f"see `amiforge history {recipe}`")
    moved: list[Move] = []
    try:
        winner = move_latest(env, recipe, moved=moved, released=record)
    except Exception as err:
        why = f"release of {build_id} failed: {err}"
        problems = _put_back(env, recipe, moved, why)
        try:
            catalog_moves.revoke(env.catalog, recipe, build_id, reason=str(record.get("reason") or reason),
                               by=str(record.get("revoked_by") or by),
                               at=str(record.get("revoked_at") or at),
                               rolled_back_to=str(record.get("rolled_back_to") or ""),
                               event=rules.event(EV_RELEASE_UNDONE, at=now_iso(), by=by,
                                                 reason=why))
        except AmiforgeError as undo:
            problems.append(f"{build_id}: {undo}")
        left = f"; could not undo: {'; '.join(problems)}" if problems else ""
        raise OperationFailed(f"release of {build_id} failed while moving `latest` ({err}) "
                              f"and was undone: the build is REVOKED{left}",
                              hint="fix the cause (the region named) and release again") \
            from err
    report = {
        "recipe": recipe, "build_id": build_id, "status": AVAILABLE,
        "image_id": record.get("image_id"), "images": images_of(record, env.region),
        "latest": bool(winner and winner["build_id"] == build_id),
        "latest_build_id": (winner or {}).get("build_id"),
        "reason": reason, "by": by, "at": at, "parameters": _parameters(moved)}
    report["notified"] = _notify(
        env, f"amiforge: {recipe} build {build_id} released",
        {"event": "release", **{k: v for k, v in report.items() if k != "parameters"}})
    return report
