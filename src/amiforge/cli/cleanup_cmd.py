"""``amiforge prune`` and ``amiforge sweep``: retention and leftovers, run from a laptop.

Both run the same step code as the stack's scheduled Prune and Sweep functions
(``steps/prune.py``, ``steps/sweep.py``) against the stack's tables, with the caller's
credentials. ``--dry-run`` prints the plan and changes nothing; a real run prints the
same rows with what was done. Exit 1 if anything failed.
"""

from __future__ import annotations

import click

from amiforge.cli.command import command_errors
from amiforge.cli.complete import complete_recipe
from amiforge.cli.context import CliContext
from amiforge.cli.render import Result
from amiforge.errors import NotFound
from amiforge.ops import views
from amiforge.ops.connect import connect
from amiforge.steps.prune import prune as run_prune
from amiforge.steps.sweep import sweep as run_sweep

pass_ctx = click.make_pass_decorator(CliContext)


@click.command()
@click.argument("recipes", nargs=-1, shell_complete=complete_recipe)
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@pass_ctx
@command_errors
def prune(ctx: CliContext, recipes: tuple[str, ...], dry_run: bool) -> Result:
    """Apply each recipe's retention (all published recipes, or only RECIPES): keep the
    newest and anything in use, prune the rest past max_age_days, deprecate as set."""
    env = connect(ctx.aws, ctx.stack)
    for name in recipes:
        if env.store.current(name) is None:
            raise NotFound(f"recipe {name!r} is not published",
                           hint="check the name with `amiforge status`")
    report = run_prune({"dry_run": dry_run, "recipes": list(recipes)}, env)
    planned = sum(1 for d in report["decisions"] if d["action"] == "prune")
    done = f"would prune {planned}" if dry_run else f"pruned {report['pruned']}"
    title = (f"prune{' (dry run)' if dry_run else ''}: {done} of "
             f"{len(report['decisions'])} image(s)")
    lines = [f"skipped {s['recipe']}: {s['reason']}" for s in report["skipped"]]
    lines += [f"not checked for use: {where}" for where in report["not_visible"]]
    return Result(data=views.versioned(**report), title=title,
                  columns=("recipe", "image", "action", "reason", "outcome"),
                  rows=[(d["recipe"], d["image_id"], d["action"], d["reason"], d["outcome"])
                        for d in report["decisions"]],
                  lines=lines, exit_code=1 if report["errors"] else 0)


@click.command()
@click.option("--dry-run", is_flag=True, help="Print what would be removed; change nothing.")
@pass_ctx
@command_errors
def sweep(ctx: CliContext, dry_run: bool) -> Result:
    """Remove what dead or finished builds left behind (builders, images, snapshots, found
    by amiforge's tags) and mark builds whose execution died FAILED. Live builds and
    AVAILABLE images are never touched."""
    report = run_sweep({"dry_run": dry_run}, connect(ctx.aws, ctx.stack))
    acted = [a for a in report["actions"] if a["action"] not in ("leave", "keep")]
    title = (f"sweep{' (dry run)' if dry_run else ''} of {', '.join(report['regions'])}: "
             f"{len(acted)} action(s)")
    return Result(data=views.versioned(**report), title=title,
                  columns=("recipe", "build id", "region", "resource", "action", "reason",
                           "outcome"),
                  rows=[(a["recipe"], a["build_id"], a["region"], a["resource"], a["action"],
                         a["reason"], a["outcome"]) for a in report["actions"]],
                  exit_code=1 if report["errors"] else 0)


COMMANDS = [prune, sweep]
