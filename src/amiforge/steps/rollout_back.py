"""Step RollBackRelease: a rollout that failed takes the release back.

Reached when RollOut raised (a template could not be moved: it put back what it had
moved) or AwaitRefresh judged a refresh failed, cancelled, rolled back or timed out.
In the order that keeps `latest` right (design invariant 2, as ``amiforge rollback``):

1. **Launch templates**: each version this build made default goes back to the
   version that was default before (:func:`revert_templates`), unless someone moved
   the template since (then it is left, and the report says so). AWS's automatic
   rollback has already put each refreshed group back on its previous configuration.
2. **Catalog**: the build becomes REVOKED (a conditional write, as ``amiforge
   rollback`` does, with the reason and ``rolled_back_to``), so `latest` and
   ``Custom::LatestAmi`` answer the previous build; if there is no previous AVAILABLE
   build, nothing can take `latest`, and the build stays AVAILABLE (the report says so).
3. **SSM, last**: ``/amiforge/<recipe>/latest`` names the previous build's image again
   in every region it has one; in a region where only this build had a copy, a
   parameter still naming it is deleted (consumers there fail loudly rather than launch
   a revoked image).
4. **Record and notify**: the build's ``rollout`` says ``rolled_back`` and why; SNS is
   told, as for a failed build.

The execution then ends failed (RolloutFailed) with the reason (Finish cleaned up the
builder before the rollout began).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from amiforge.aws import launch_templates as lt_api
from amiforge.aws import messaging
from amiforge.aws import rollbacks as catalog_moves
from amiforge.aws import ssm as ssm_api
from amiforge.aws.catalog import now_iso
from amiforge.core import rollback as rules
from amiforge.core.latest import choose_latest
from amiforge.core.rollback import AVAILABLE
from amiforge.errors import AmiforgeError
from amiforge.steps.env import StepEnv
from amiforge.steps.latest import published_hash, sync_latest

log = logging.getLogger(__name__)
BY = "amiforge rollout"
MAX_REASON = 1000


def revert_templates(env: StepEnv, moved: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Point each template of ``moved`` (a build's ``rollout.templates``) back at its
    previous default version, if its default is still the version made; what happened
    to each (``reverted`` true or false, and why)."""
    done: list[dict[str, Any]] = []
    for m in reversed(list(moved)):
        entry = {"template_id": m["template_id"], "region": m["region"],
                 "version": int(m["previous_version"])}
        try:
            ec2 = env.client("ec2", m["region"])
            current = lt_api.default_version(ec2, str(m["template_id"]))
            if current is None or current.version != int(m["version"]):
                now = "deleted" if current is None else f"default is {current.version}"
                entry.update(reverted=False, reason=f"left as it is: its {now}, not version "
                                                    f"{m['version']} this build made")
            else:
                lt_api.set_default(ec2, str(m["template_id"]), int(m["previous_version"]))
                entry.update(reverted=True, reason="default version put back")
        except AmiforgeError as err:
            entry.update(reverted=False, reason=f"could not put it back: {err}")
        log.warning("rollback: launch template %s in %s: %s", entry["template_id"],
                    entry["region"], entry["reason"])
        done.append(entry)
    return done


def _reason(state: Mapping[str, Any]) -> str:
    rollout = state.get("rollout") or {}
    error = state.get("rollout_error") or {}
    reason = (rollout.get("reason") if isinstance(rollout, Mapping) else None) or (
        f"the rollout failed: {error.get('Error', 'error')}: {error.get('Cause', '')}"
        if isinstance(error, Mapping) else "the rollout failed")
    return " ".join(str(reason).split())[:MAX_REASON]


def roll_back_release(state: dict[str, Any], env: StepEnv) -> dict[str, Any]:
    build = state["build"]
    recipe, build_id = build["recipe"], build["build_id"]
    reason = _reason(state)
    found = env.catalog.get(recipe, build_id)
    record: Mapping[str, Any] = found if found is not None else {}
    previous: Mapping[str, Any] = record.get("rollout") or {}
    made = list(previous.get("templates") or [])
    templates = revert_templates(env, made)
    at = now_iso()
    others = [b for b in env.catalog.available(recipe) if b.get("build_id") != build_id]
    target = choose_latest(others, published_hash(env, recipe))
    revoked = False
    if target is not None and record.get("status") == AVAILABLE:
        target_id = str(target["build_id"])
        revoked = catalog_moves.revoke(
            env.catalog, recipe, build_id, reason=f"rollout failed: {reason}", by=BY, at=at,
            rolled_back_to=target_id,
            event=rules.event(rules.EV_REVOKED, at=at, by=BY, reason=reason,
                              builds=[target_id]))
        if revoked:
            catalog_moves.note_rollback(env.catalog, recipe, target_id, event=rules.event(
                rules.EV_TARGET, at=at, by=BY, reason=reason, builds=[build_id]))
            sync_latest(env, recipe, winner=target)
            _drop_orphans(env, recipe, record, target)
    latest_note = (f"latest went back to build {target['build_id']}" if revoked and target
                   else "latest was kept: there is no earlier AVAILABLE build to go back to")
    outcome = {**previous, "outcome": "rolled_back", "reason": reason,
               "reverted": templates, "latest": latest_note}
    env.catalog.update(recipe, build_id, rollout=outcome)
    report = {"recipe": recipe, "build_id": build_id, "reason": reason, "revoked": revoked,
              "latest_build_id": str(target["build_id"]) if revoked and target else build_id,
              "templates": templates, "latest": latest_note}
    messaging.notify(env.client("sns"), env.topic_arn,
                     f"amiforge: {recipe} rollout failed and was rolled back",
                     {"status": "ROLLED_BACK", "event": "rollout_failed", **report})
    return report


def _drop_orphans(env: StepEnv, recipe: str, record: Mapping[str, Any],
                  target: Mapping[str, Any]) -> None:
    """In regions where only the revoked build had a copy, `latest` must not name it."""
    theirs = dict(target.get("images") or {})
    name = ssm_api.latest_parameter_name(recipe)
    for region, image_id in sorted((record.get("images") or {}).items()):
        if region in theirs:
            continue
        ssm = env.client("ssm", region)
        if ssm_api.get_value(ssm, name) == image_id:
            ssm_api.delete_parameter(ssm, name)
