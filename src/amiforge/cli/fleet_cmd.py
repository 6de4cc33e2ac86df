"""``amiforge fleet``: parse, call ops/fleet, hand the answer to its layout."""

from __future__ import annotations

import click

from amiforge.cli import layouts
from amiforge.cli.command import command_errors
from amiforge.cli.complete import complete_recipe
from amiforge.cli.context import CliContext
from amiforge.cli.render import Result
from amiforge.ops.connect import connect
from amiforge.ops.fleet import fleet

pass_ctx = click.make_pass_decorator(CliContext)


@click.command("fleet")
@click.argument("recipes", nargs=-1, metavar="[RECIPE]...", shell_complete=complete_recipe)
@click.option("--stale-only", is_flag=True,
              help="Only users of an image with a newer release (releases_behind > 0).")
@click.option("--older-than", "older_than", type=click.FloatRange(min=0), default=None,
              metavar="DAYS",
              help="Exit 1 if any user listed runs an image older than DAYS (a CI gate).")
@pass_ctx
@command_errors
def fleet_cmd(ctx: CliContext, recipes: tuple[str, ...], stale_only: bool,
              older_than: float | None) -> Result:
    """Show every instance, Auto Scaling group, launch template version, launch
    configuration and SSM parameter that uses an image of RECIPE (every published recipe
    by default), in every region it has copies: the image, how many releases behind it
    is, its age and its base AMI's age. It reads what retention reads."""
    report = fleet(connect(ctx.aws, ctx.stack), recipes, stale_only=stale_only,
                   older_than=older_than)
    return layouts.fleet(report, older_than=older_than)


COMMANDS = [fleet_cmd]
