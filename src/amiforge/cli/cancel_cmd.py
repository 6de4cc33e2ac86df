"""``amiforge cancel``: parse, call ops/cancel, render."""

from __future__ import annotations

import click

from amiforge.cli import layouts
from amiforge.cli.command import command_errors
from amiforge.cli.complete import complete_recipe
from amiforge.cli.context import CliContext
from amiforge.cli.render import Result
from amiforge.ops.cancel import DEFAULT_REASON, cancel
from amiforge.ops.connect import connect

pass_ctx = click.make_pass_decorator(CliContext)


@click.command("cancel")
@click.argument("targets", nargs=-1, required=True, metavar="BUILD_ID|RECIPE...",
                shell_complete=complete_recipe)
@click.option("--reason", default=DEFAULT_REASON, show_default=True,
              help="Why; recorded on the build and sent with the notification.")
@pass_ctx
@command_errors
def cancel_cmd(ctx: CliContext, targets: tuple[str, ...], reason: str) -> Result:
    """Stop running builds (a build id, or a recipe's running build), remove the builder,
    images, snapshots and build stack they started, and record them CANCELLED. A build
    that already ended is left as it is (exit 2)."""
    return layouts.cancelled(cancel(connect(ctx.aws, ctx.stack), list(targets), reason=reason))


COMMANDS = [cancel_cmd]
