"""``amiforge prune`` and ``amiforge sweep``: retention and leftovers, run from a laptop.

Both run the same step code as the stack's scheduled Prune and Sweep functions
(``steps/prune.py``, ``steps/sweep.py``, through ``ops/cleanup.py``) against the stack's tables, with the caller's
credentials. ``--dry-run`` prints the plan and changes nothing; a real run prints the
same rows with what was done. Exit 1 if anything failed.
"""

from __future__ import annotations

import click

from amiforge.cli import layouts
from amiforge.cli.command import command_errors
from amiforge.cli.complete import complete_recipe
from amiforge.cli.context import CliContext
from amiforge.cli.render import Result
from amiforge.ops import cleanup
from amiforge.ops.connect import connect

pass_ctx = click.make_pass_decorator(CliContext)


@click.command()
@click.argument("recipes", nargs=-1, shell_complete=complete_recipe)
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@pass_ctx
@command_errors
def prune(ctx: CliContext, recipes: tuple[str, ...], dry_run: bool) -> Result:
    """Apply each recipe's retention (all published recipes, or only RECIPES): keep the
    newest and anything in use, prune the rest past max_age_days, deprecate as set."""
    report = cleanup.prune(connect(ctx.aws, ctx.stack), recipes, dry_run=dry_run)
    return layouts.pruned(report, dry_run=dry_run)


@click.command()
@click.option("--dry-run", is_flag=True, help="Print what would be removed; change nothing.")
@pass_ctx
@command_errors
def sweep(ctx: CliContext, dry_run: bool) -> Result:
    """Remove what dead or finished builds left behind (builders, images, snapshots, found
    by amiforge's tags) and mark builds whose execution died FAILED. Live builds and
    AVAILABLE images are never touched."""
    report = cleanup.sweep(connect(ctx.aws, ctx.stack), dry_run=dry_run)
    return layouts.swept(report, dry_run=dry_run)


COMMANDS = [prune, sweep]
