"""``amiforge rollback`` and ``amiforge release``: parse, call ops/rollback, hand the answer
to its layout."""

from __future__ import annotations

import click

from amiforge.cli import layouts
from amiforge.cli.command import command_errors
from amiforge.cli.complete import complete_recipe
from amiforge.cli.context import CliContext
from amiforge.cli.render import Result
from amiforge.ops.connect import connect
from amiforge.ops.rollback import release, rollback

pass_ctx = click.make_pass_decorator(CliContext)


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
    return layouts.rolled_back(recipe, rollback(connect(ctx.aws, ctx.stack), recipe, to=to,
                                                reason=reason))


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
    return layouts.released(build_id, release(connect(ctx.aws, ctx.stack), build_id,
                                              reason=reason))


COMMANDS = [rollback_cmd, release_cmd]
