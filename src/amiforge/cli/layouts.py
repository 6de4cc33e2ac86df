"""What each command's data looks like: one function per command turns what ``ops/``
returned into a :class:`~amiforge.cli.render.Result` (the ``--output json`` shape of
:mod:`amiforge.ops.views`, plus the text table and lines), which :mod:`.render` prints.

Commands parse their arguments, call one operation and hand its answer to a layout here;
no command builds rows of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from amiforge.cli.render import Result
from amiforge.core.model import Recipe
from amiforge.core.plan import PlanDecision
from amiforge.ops import views
from amiforge.ops.builds import not_available
from amiforge.ops.fleet import FleetReport
from amiforge.ops.lifecycle import STACK_DESTROYED
from amiforge.ops.publish import Published
from amiforge.ops.uninstall import UninstallPlan

Record = Mapping[str, Any]


def _console_tail(build_id: str, tail: str) -> list[str]:
    return [f"--- console tail of {build_id} ---", *tail.splitlines()[-20:]]


# --- the stack -------------------------------------------------------------------------


def deployed(stack: str, outputs: Mapping[str, str], changes: Sequence[Record],
             reattached: Mapping[str, str]) -> Result:
    lines = [f"parameter {c['parameter']}: {c['old'] if c['old'] is not None else '(unset)'}"
             f" -> {c['new'] if c['new'] is not None else '(unset)'}" for c in changes]
    lines = lines or ["parameters: no change"]
    lines += [f"re-attached the retained table {table} ({parameter}): history, latest and "
              "retention carry on" for parameter, table in sorted(reattached.items())]
    return Result(data=views.versioned(stack=stack, outputs=outputs,
                                       parameter_changes=list(changes),
                                       reattached=reattached),
                  title=f"stack {stack}", columns=("output", "value"),
                  rows=sorted(outputs.items()), lines=lines)


def _cancelled_lines(cancelled: Iterable[Record]) -> list[str]:
    return [f"stopped build {b['build_id']} ({STACK_DESTROYED}); terminated "
            f"{len(b['terminated'])} instance(s), removed {len(b['deregistered'])} image(s)"
            for b in cancelled]


def destroyed(stack: str, done: Record) -> Result:
    tables = " and ".join(sorted(done["retained"].values()))
    lines = _cancelled_lines(done["cancelled"])
    lines.append(f"deleted stack {stack}; kept its catalog and recipe tables ({tables}; "
                 "`amiforge deploy` of the same stack name re-attaches them), the images "
                 "and the /amiforge/<recipe>/latest parameters" if tables else
                 f"deleted stack {stack} (it had no tables)")
    return Result(data=views.versioned(**done), lines=lines)


def uninstall_listing(plan: UninstallPlan) -> str:
    """What ``destroy --delete-data`` is about to delete, for its question."""
    listing = [f"stack {plan.stack}" if plan.stack_exists else
               f"stack {plan.stack}: already deleted",
               f"tables {plan.catalog_table} and {plan.recipes_table}",
               (f"bucket {plan.bucket}" if not plan.bucket_users else
                f"bucket {plan.bucket}: kept, used by {', '.join(plan.bucket_users)}"),
               *(f"parameter {p['name']} in {p['region']}" for p in plan.parameters),
               *(f"image {image_id} in {region} ({b['recipe']}, build {b['build_id']})"
                 for b in plan.images for region, image_id in sorted(b["images"].items())),
               "(an image still in use is kept)"]
    return "amiforge destroy --delete-data will delete:\n  " + "\n  ".join(listing)


def uninstalled(stack: str, done: Record) -> Result:
    kept = [b for b in done["images"] if str(b["outcome"]).startswith("kept")]
    lines = _cancelled_lines(done["cancelled"])
    lines.append(f"deleted stack {stack}, {len(done['images']) - len(kept)} image(s), "
                 f"{len(done['parameters_deleted'])} parameter(s), the tables "
                 f"{', '.join(done['tables_deleted'])}"
                 + (f" and the bucket {', '.join(done['bucket_deleted'])}"
                    if done["bucket_deleted"] else
                    f"; kept the bucket (used by {', '.join(done['bucket_kept_for'])})"))
    lines += [f"kept image {b['image_id']} ({b['recipe']}): {b['outcome']}" for b in kept]
    return Result(data=views.versioned(**done), lines=lines)


# --- recipes ---------------------------------------------------------------------------


def validated(recipes: Sequence[Recipe]) -> Result:
    noun = "recipe" if len(recipes) == 1 else "recipes"
    return Result(data=views.validated(recipes), title=f"{len(recipes)} {noun} valid",
                  columns=("name", "platform", "base", "hash", "source"),
                  rows=[(r.name, r.build.platform, r.base.label(), r.short_hash, r.source)
                        for r in recipes])


def _started_text(r: Record, why_not: str | None = None) -> str:
    if r["re_released"]:
        return f"- (re-released {r['re_released']})"
    if r["build_outcome"] == "already started":
        return f"{r['build_started']} (by a concurrent detection)"
    if r["build_started"]:
        return str(r["build_started"])
    return f"- ({why_not})" if why_not else "-"


def published(done: Published) -> Result:
    return Result(data=views.versioned(recipes=views.published(done.results)),
                  title="published",
                  columns=("recipe", "hash", "changed", "git commit", "build started"),
                  rows=[(r["recipe"], r["hash"][:12], "yes" if r["changed"] else "no",
                         r["git_commit"] or "-",
                         _started_text(r, done.why_not.get(r["recipe"])))
                        for r in done.results])


def planned(decisions: Sequence[PlanDecision]) -> Result:
    return Result(data=views.plan(d.as_dict() for d in decisions), title="plan",
                  columns=("recipe", "action", "reason", "detail"),
                  rows=[(d.recipe, d.action, d.reason, d.detail) for d in decisions])


def detected(report: Record) -> Result:
    return Result(data=views.detect(report),
                  title=f"detect: {report['started']} build(s) started",
                  columns=("recipe", "action", "reason", "detail", "outcome"),
                  rows=[(d["recipe"], d["action"], d["reason"], d.get("detail", ""),
                         d.get("outcome", "-")) for d in report["decisions"]])


def retired(done: Sequence[Record]) -> Result:
    return Result(data=views.versioned(retired=list(done)), title="retired",
                  columns=("recipe", "retired at", "latest image"),
                  rows=[(r["recipe"], r["retired_at"], r["latest_image"] or "-")
                        for r in done])


def purged(done: Sequence[Record]) -> Result:
    return Result(data=views.versioned(purged=list(done)), title="retired and purged",
                  columns=("recipe", "parameters deleted", "images removed", "kept"),
                  rows=[(r["recipe"], ", ".join(r["parameters_deleted"]) or "-",
                         ", ".join(r["pruned"]) or "-",
                         "; ".join(f"{k['image_id']}: {k['reason']}" for k in r["kept"])
                         or "-") for r in done])


# --- builds ----------------------------------------------------------------------------


def started(builds: Sequence[Record]) -> Result:
    return Result(data=views.started_builds(builds), title="builds",
                  columns=("recipe", "build id", "base ami", "started"),
                  rows=[(b["recipe"], b["build_id"], b["base_ami"], b["summary"])
                        for b in builds])


def waited(results: Sequence[dict[str, Any]], *, title: str,
           published: Sequence[Record] | None = None) -> Result:
    """Followed builds; exit 1 if one did not end AVAILABLE (with its console tail).
    ``published``: ``publish --wait`` shows the recipes it published too."""
    failed = not_available(results)
    lines = []
    for r in failed:
        tail = (r.get("record") or {}).get("console_tail")
        if tail:
            lines += _console_tail(r["build_id"], tail)
    lines += [f"build {r['build_id']} awaits approval (image {r.get('image_id')}): "
              f"`amiforge approve {r['build_id']}` or `amiforge reject {r['build_id']} "
              "--reason TEXT`" for r in results if r["status"] == "AWAITING_APPROVAL"]
    data = views.versioned(builds=[views.waited_build(r) for r in results])
    if published is not None:
        data["recipes"] = views.published(published)
    return Result(data=data, title=title,
                  columns=("recipe", "build id", "status", "image", "reason"),
                  rows=[(r["recipe"], r["build_id"], r.get("status"),
                         r.get("image_id") or "-", r.get("reason") or "") for r in results],
                  lines=lines, exit_code=1 if failed else 0)


def cancelled(done: Sequence[Record]) -> Result:
    return Result(data=views.versioned(cancelled=list(done)), title="cancelled",
                  columns=("recipe", "build id", "status", "terminated", "images removed"),
                  rows=[(d["recipe"], d["build_id"], d["status"],
                         " ".join(d["terminated"]) or "-",
                         " ".join(d["deregistered"]) or "-") for d in done])


def approval(done: Record) -> Result:
    """``approve``/``reject``: the decision sent and the build's status."""
    return Result(data=views.versioned(**{k: done[k] for k in views.APPROVAL_FIELDS}),
                  lines=[done["message"]])


# --- lookups ---------------------------------------------------------------------------


def status(stack: str, rows: Sequence[Record], awaiting: Sequence[Record] = ()) -> Result:
    lines = [f"awaiting approval: {a['recipe']} build {a['build_id']} (image {a['image_id']}, "
             f"until {a['deadline']}): `{a['approve']}` or `{a['reject']}`" for a in awaiting]
    return Result(data=views.versioned(recipes=list(rows), awaiting_approval=list(awaiting)),
                  title=f"amiforge status ({stack})",
                  columns=("recipe", "hash", "last build", "latest image", "reason"),
                  rows=[(r["recipe"], r["hash"][:12], r["summary"], r["latest_image"] or "-",
                         r["reason"] or "") for r in rows], lines=lines)


def attempt_lines(build: Record) -> list[str]:
    """One line per launch of a build that needed more than one, or whose only launch
    failed: "attempt N (instance): outcome: reason", then the last lines of its console."""
    attempts = build.get("attempts") or []
    if not attempts or (len(attempts) == 1 and attempts[0].get("outcome") == "succeeded"):
        return []
    lines = [f"--- attempts of {build['build_id']} ---"]
    for a in attempts:
        lines.append(f"attempt {a.get('attempt')} ({a.get('instance_id') or '-'}): "
                     f"{a.get('outcome')}: {a.get('reason')}")
        lines += [f"    {line}" for line in (a.get("console_tail") or "").splitlines()[-5:]]
    return lines


def rollout_lines(b: Record) -> list[str]:
    """What a build's rollout did: each template moved, group refreshed, and skip."""
    rollout = b.get("rollout")
    if not rollout:
        return []
    lines = [f"rollout of {b['build_id']}: {rollout.get('outcome')}"
             + (f": {rollout['reason']}" if rollout.get("reason") else "")]
    lines += [f"  launch template {t.get('template_id')} ({t.get('region')}): version "
              f"{t.get('previous_version')} -> {t.get('version')}"
              for t in rollout.get("templates") or []]
    lines += [f"  group {r.get('auto_scaling_group')} ({r.get('region')}): refresh "
              f"{r.get('refresh_id')} {r.get('status')}" for r in rollout.get("refreshes") or []]
    lines += [f"  skipped {s.get('what')} ({s.get('region', '-')}): {s.get('reason')}"
              for s in rollout.get("skipped") or []]
    return lines


def history(recipe: str, records: Sequence[Record]) -> Result:
    """Builds newest first, with each build's attempts and the console tail of a failure."""
    data = views.history(recipe, records)
    builds = data["builds"]
    lines = []
    for b in builds:
        lines += attempt_lines(b)
        lines += rollback_lines(b)
        if test := b.get("test"):  # the recipe's test: phase, when it ran
            lines.append(f"test of {b['build_id']} ({test.get('instance_id') or '-'}): "
                         f"{test.get('outcome')}: {test.get('reason') or ''} "
                         f"({test.get('duration_seconds')} s)")
        lines += rollout_lines(b)
        tail = views.failure_tail(b)
        if tail:
            lines += _console_tail(b["build_id"], tail)
    return Result(data=data, title=f"history of {recipe}",
                  columns=("build id", "status", "image", "base ami", "created", "reason"),
                  rows=[(b["build_id"], b["status"], b["image_id"] or "-", b["base_ami"],
                         b["created_at"], b["reason"] or "") for b in builds], lines=lines)


def latest(recipe: str, image: Record) -> Result:
    return Result(data=views.latest(recipe, image), lines=[image["ImageId"]])


# --- retention and leftovers -----------------------------------------------------------


def pruned(report: Record, *, dry_run: bool) -> Result:
    planned_count = sum(1 for d in report["decisions"] if d["action"] == "prune")
    done = f"would prune {planned_count}" if dry_run else f"pruned {report['pruned']}"
    title = (f"prune{' (dry run)' if dry_run else ''}: {done} of "
             f"{len(report['decisions'])} image(s)")
    lines = [f"skipped {s['recipe']}: {s['reason']}" for s in report["skipped"]]
    lines += [f"not checked for use: {where}" for where in report["not_visible"]]
    return Result(data=views.versioned(**report), title=title,
                  columns=("recipe", "image", "action", "reason", "outcome"),
                  rows=[(d["recipe"], d["image_id"], d["action"], d["reason"], d["outcome"])
                        for d in report["decisions"]],
                  lines=lines, exit_code=1 if report["errors"] else 0)


def swept(report: Record, *, dry_run: bool) -> Result:
    acted = [a for a in report["actions"] if a["action"] not in ("leave", "keep")]
    title = (f"sweep{' (dry run)' if dry_run else ''} of {', '.join(report['regions'])}: "
             f"{len(acted)} action(s)")
    return Result(data=views.versioned(**report), title=title,
                  columns=("recipe", "build id", "region", "resource", "action", "reason",
                           "outcome"),
                  rows=[(a["recipe"], a["build_id"], a["region"], a["resource"], a["action"],
                         a["reason"], a["outcome"]) for a in report["actions"]],
                  exit_code=1 if report["errors"] else 0)


# --- rollback --------------------------------------------------------------------------


def _parameter_rows(recipe: str, parameters: Sequence[Record]) -> list[str]:
    return [f"/amiforge/{recipe}/latest in {p['region']}: {p['previous'] or '(none)'} -> "
            f"{p['image_id'] or '(deleted: no image there)'}" for p in parameters] or [
        "latest parameters: already right, nothing moved"]


def rolled_back(recipe: str, done: Record) -> Result:
    lines = [f"revoked {r['build_id']} ({r['image_id']})" for r in done["revoked"]]
    lines += [f"latest of {recipe} is now {done['image_id']} (build {done['build_id']})"]
    if done["latest_build_id"] != done["build_id"]:
        lines.append(f"note: build {done['latest_build_id']} became AVAILABLE meanwhile and "
                     "ranks first: `latest` names it")
    lines += _parameter_rows(recipe, done["parameters"])
    if not done["notified"]:
        lines.append("warning: the SNS notification could not be sent")
    return Result(data=views.versioned(**done), title=f"rolled back {recipe}: {done['reason']}",
                  lines=lines)


def released(build_id: str, done: Record) -> Result:
    recipe = done["recipe"]
    lines = [f"{build_id} is AVAILABLE again ({done['image_id']})",
             f"latest of {recipe} is {'now this build' if done['latest'] else 'still'} "
             f"{done['latest_build_id']}"
             + ("" if done["latest"] else " (it ranks first: newer, or of the published "
                                          "recipe version)")]
    lines += _parameter_rows(recipe, done["parameters"])
    if not done["notified"]:
        lines.append("warning: the SNS notification could not be sent")
    return Result(data=views.versioned(**done), title=f"released {build_id}: {done['reason']}",
                  lines=lines)


def rollback_lines(build: Record) -> list[str]:
    """``history``'s text: one line per rollback event of a build (revoked, rollback
    target, released, undone), with who, when and why."""
    events = build.get("rollbacks") or []
    if not events:
        return []
    lines = [f"--- rollbacks of {build['build_id']} ---"]
    for e in events:
        others = ", ".join(e.get("builds") or [])
        lines.append(f"{e.get('at')} {e.get('event')} by {e.get('by')}: {e.get('reason')}"
                     + (f" ({others})" if others else ""))
    return lines


# --- fleet -----------------------------------------------------------------------------


def fleet(report: FleetReport, *, older_than: float | None = None) -> Result:
    """Who runs which image; exit 1 when ``--older-than`` found an image past it."""
    users = report.users
    lines = [f"error in {e['region']}: {e['reason']}" for e in report.errors]
    if older_than is not None:
        lines.append(f"older than {older_than:g} day(s): {', '.join(report.older)}"
                     if report.older else f"no image older than {older_than:g} day(s)")
    stale = sum(1 for u in users if u["releases_behind"])
    return Result(data=views.fleet(users, report.errors),
                  title=f"fleet: {len(users)} user(s), {stale} on an older release",
                  columns=("recipe", "region", "kind", "id", "image", "behind", "age (d)",
                           "base age (d)"),
                  rows=[(u["recipe"], u["region"], u["kind"], u["id"], u["image_id"],
                         u["releases_behind"], _days(u["image_age_days"]),
                         _days(u["base_age_days"])) for u in users],
                  lines=lines, exit_code=1 if report.older else 0)


def _days(value: int | None) -> str:
    return "-" if value is None else str(value)
