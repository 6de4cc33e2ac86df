"""``amiforge approve`` and ``amiforge reject``: parse, call ops/approval, render."""

from __future__ import annotations

import click

from amiforge.cli import layouts
from amiforge.cli.command import command_errors
from amiforge.cli.context import CliContext
from amiforge.cli.render import Result
from amiforge.ops.approval import approve, reject
from amiforge.ops.connect import connect

pass_ctx = click.make_pass_decorator(CliContext)


@click.command("approve")
@click.argument("build_id", metavar="BUILD_ID")
@pass_ctx
@command_errors
def approve_cmd(ctx: CliContext, build_id: str) -> Result:
    """Release a build AWAITING_APPROVAL (release.approval: manual): its image is copied,
    shared and made `latest`. Approving an approved build again changes nothing."""
    return layouts.approval(approve(connect(ctx.aws, ctx.stack), build_id))


@click.command("reject")
@click.argument("build_id", metavar="BUILD_ID")
@click.option("--reason", required=True,
              help="Why; recorded as the build's failure reason and sent with the "
                   "notification.")
@pass_ctx
@command_errors
def reject_cmd(ctx: CliContext, build_id: str, reason: str) -> Result:
    """Refuse a build AWAITING_APPROVAL: it is recorded FAILED with the reason and its
    image and snapshots are removed; `latest` does not move."""
    return layouts.approval(reject(connect(ctx.aws, ctx.stack), build_id, reason))


COMMANDS = [approve_cmd, reject_cmd]
