"""``amiforge rollback`` and ``amiforge release``: parse, call ops/rollback, render."""

from __future__ import annotations

from typing import Any

import click

from amiforge.cli.complete import complete_recipe
from amiforge.cli.context import CliContext
from amiforge.cli.main import command_errors
from amiforge.cli.render import Result
from amiforge.ops import views
from amiforge.ops.connect import connect
from amiforge.ops.rollback import release, rollback

pass_ctx = click.make_pass_decorator(CliContext)


def _parameter_rows(recipe: str, parameters: list[dict[str, Any]]) -> list[str]:
    return [f"/amiforge/{recipe}/latest in {p['region']}: {p['previous'] or '(none)'} -> "
            f"{p['image_id'] or '(deleted: no image there)'}" for p in parameters] or [
        "latest parameters: already right, nothing moved"]


@click.command("rollback")
@click.argument("recipe", shell_complete=complete_recipe)
@click.option("--to", "to", default=None, metavar="BUILD_ID",
              help="The AVAILABLE build to go back to (default: the previous one). Every "
                   "build ranking above it is revoked.")
@click.option("--reason", default=None,
              help="Why; recorded on the revoked builds and sent with the notification. "
                   "Default: \"rolled back by <caller>\".")
@pass_ctx
@command_errors
def rollback_cmd(ctx: CliContext, recipe: str, to: str | None, reason: str | None) -> Result:
    """Move RECIPE's `latest` (SSM parameter in every region, `amiforge latest`,
    Custom::LatestAmi) back to the previous AVAILABLE image, or the build --to names, and
    mark the builds it leaves REVOKED: never `latest` again, not rebuilt by detection,
    image kept (`amiforge release BUILD_ID` undoes it). Nothing is deleted."""
    done = rollback(connect(ctx.aws, ctx.stack), recipe, to=to, reason=reason)
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


@click.command("release")
@click.argument("build_id", metavar="BUILD_ID")
@click.option("--reason", default=None,
              help="Why; recorded on the build. Default: \"released by <caller>\".")
@pass_ctx
@command_errors
def release_cmd(ctx: CliContext, build_id: str, reason: str | None) -> Result:
    """Undo a rollback: the REVOKED build BUILD_ID becomes AVAILABLE again, and `latest`
    again (SSM parameter in every region) if it ranks first. A build that is not REVOKED
    is refused (exit 2)."""
    done = release(connect(ctx.aws, ctx.stack), build_id, reason=reason)
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


def rollback_lines(build: dict[str, Any]) -> list[str]:
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


COMMANDS = [rollback_cmd, release_cmd]
