"""Commands that talk to a deployed stack: deploy, destroy, publish, build, status, history,
latest. Each returns a Result; nothing here prints except progress (to stderr)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from amiforge.cli import layouts
from amiforge.cli.command import command_errors
from amiforge.cli.complete import complete_recipe
from amiforge.cli.context import CliContext
from amiforge.cli.progress import build_progress, err_console, line_progress
from amiforge.cli.render import Result
from amiforge.core.recipes import load_recipes
from amiforge.errors import OperationFailed
from amiforge.ops import lifecycle, lookups, uninstall
from amiforge.ops.approval import awaiting
from amiforge.ops.builds import start_builds, wait_for_builds
from amiforge.ops.connect import StepEnv, connect
from amiforge.ops.plan import detect, plan
from amiforge.ops.publish import load_for_publish, publish_directory, retire
from amiforge.ops.purge import purge as purge_recipes

pass_ctx = click.make_pass_decorator(CliContext)


@click.command()
@click.option("--parameter", "-p", "parameters", multiple=True, metavar="KEY=VALUE",
              help="Stack parameter to set (repeatable), e.g. -p LogRetentionDays=90. "
                   "Parameters not given keep their current values.")
@click.option("--reset-parameters", is_flag=True,
              help="Return every parameter not given with -p to the template's default.")
@pass_ctx
@command_errors
def deploy(ctx: CliContext, parameters: tuple[str, ...], reset_parameters: bool) -> Result:
    """Package the Lambda bundle, create or update the stack, wait, print its outputs and
    every parameter whose value changed."""
    overrides: dict[str, str] = {}
    for item in parameters:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--parameter")
        overrides[key] = value
    deployed = lifecycle.deploy(ctx.aws, ctx.stack, overrides,
                                reset_parameters=reset_parameters, progress=line_progress())
    return layouts.deployed(ctx.stack, deployed.outputs,
                            [c.as_dict() for c in deployed.changes], deployed.reattached)


def _confirm(question: str) -> None:
    """Ask; a no, or no answer at all (no terminal, empty input), deletes nothing and says
    how to go on without the question (click alone printed a bare "Aborted!")."""
    try:
        click.confirm(question, abort=True, err=True)
    except click.Abort:
        click.echo("", err=True)  # end the question's line
        raise OperationFailed("not confirmed: nothing was deleted",
                              hint="answer y, or pass --yes (needed where there is no "
                                   "terminal to ask on, as in CI)") from None


@click.command()
@click.option("--force", is_flag=True,
              help="Stop running builds (recorded CANCELLED: stack destroyed) and clean up "
                   "what they started, instead of refusing.")
@click.option("--delete-data", is_flag=True,
              help="Uninstall: also delete the images (not those in use), the latest "
                   "parameters, the catalog and recipe tables and the artifact bucket.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
@command_errors
def destroy(ctx: CliContext, force: bool, delete_data: bool, yes: bool) -> Result:
    """Delete the stack, keeping its data: the catalog and recipe tables, the images and
    the latest parameters stay, and a later `deploy` of the same name re-attaches them.
    Refuses while builds run unless --force. --delete-data removes the data too."""
    if delete_data:
        return _uninstall(ctx, force=force, yes=yes)
    if not yes:
        _confirm(f"Delete stack {ctx.stack}?")
    done = lifecycle.destroy(ctx.aws, ctx.stack, force=force, progress=line_progress())
    return layouts.destroyed(ctx.stack, done)


def _uninstall(ctx: CliContext, *, force: bool, yes: bool) -> Result:
    plan = uninstall.plan_uninstall(ctx.aws, ctx.stack)
    if not yes:
        click.echo(layouts.uninstall_listing(plan), err=True)
        _confirm(f"Delete stack {ctx.stack} and all of its data?")
    done = uninstall.uninstall(ctx.aws, plan, force=force, progress=line_progress())
    return layouts.uninstalled(ctx.stack, done)


@click.command("publish")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--no-detect", is_flag=True,
              help="Only upload; do not start the builds the new versions imply.")
@click.option("--wait", is_flag=True,
              help="Follow the builds this publish started to the end (exit 1 if one failed).")
@click.option("--timeout", default=7200, show_default=True,
              help="Seconds to wait at most (with --wait).")
@click.option("--prune", is_flag=True,
              help="Retire the published recipes that DIRECTORY no longer holds.")
@pass_ctx
@command_errors
def publish_cmd(ctx: CliContext, directory: Path, no_detect: bool, wait: bool,
                timeout: int, prune: bool) -> Result:
    """Validate the recipes in DIRECTORY, upload them with their hash and git commit, and
    start the builds they imply (so a commit that reaches `publish` builds)."""
    if wait and no_detect:
        raise click.UsageError("--wait follows the builds publish starts; drop --no-detect")
    recipes = load_for_publish(directory, prune=prune)  # checked before any write
    env = connect(ctx.aws, ctx.stack)
    done = publish_directory(env, directory, recipes, start=not no_detect, prune=prune)
    for message in done.warnings:
        warn(message)
    if wait:
        follow = [{"recipe": r["recipe"], "build_id": r["build_started"]}
                  for r in done.results if r["build_started"]]
        return _waited(env, follow, timeout, title="published builds",
                       published=done.results)
    return layouts.published(done)


@click.command("plan")
@click.argument("directory", type=click.Path(path_type=Path))
@pass_ctx
@command_errors
def plan_cmd(ctx: CliContext, directory: Path) -> Result:
    """Say which recipes in DIRECTORY would build and why. Changes nothing."""
    return layouts.planned(plan(connect(ctx.aws, ctx.stack), load_recipes(directory)))


@click.command("detect")
@pass_ctx
@command_errors
def detect_cmd(ctx: CliContext) -> Result:
    """Run detection now: start a build for every stale published recipe."""
    return layouts.detected(detect(connect(ctx.aws, ctx.stack), trigger="cli"))


def warn(message: str) -> None:
    """A warning on stderr (stdout stays the command's result, JSON included)."""
    err_console().print(f"warning: {message}", markup=False, highlight=False)


def _waited(env: StepEnv, builds: list[dict[str, Any]], timeout: int, *, title: str,
            published: list[dict[str, Any]] | None = None) -> Result:
    """Follow ``builds`` with the progress display on stderr."""
    with build_progress(builds) as on_update:
        results = wait_for_builds(env, builds, on_update=on_update, timeout=timeout)
    return layouts.waited(results, title=title, published=published)


@click.command()
@click.argument("recipes", nargs=-1, required=True, shell_complete=complete_recipe)
@click.option("--wait", is_flag=True, help="Follow the build(s) to the end, with progress.")
@click.option("--rebuild", is_flag=True,
              help="Build again a recipe version already built on its current base.")
@click.option("--base", "base", metavar="AMI_ID", default=None,
              help="Build once on this AMI instead of the recipe's base (trigger "
                   "manual-base); the recipe and its base tracking are unchanged.")
@click.option("--timeout", default=7200, show_default=True, help="Seconds to wait at most.")
@pass_ctx
@command_errors
def build(ctx: CliContext, recipes: tuple[str, ...], wait: bool, rebuild: bool,
          timeout: int, base: str | None) -> Result:
    """Start a build of each published RECIPE now (exit 1 if a waited build failed).

    Every name is checked first: one that is not published starts nothing. A version
    already built on the current base is not built again without --rebuild. --base
    builds on the given AMI instead, once; that build may become latest like any other."""
    env = connect(ctx.aws, ctx.stack)
    started = start_builds(env, recipes, rebuild=rebuild, base=base)
    if not wait:
        return layouts.started(started)
    return _waited(env, started, timeout, title="builds")


@click.command()
@pass_ctx
@command_errors
def status(ctx: CliContext) -> Result:
    """Every published recipe: its newest build and its newest available image."""
    env = connect(ctx.aws, ctx.stack)
    rows = lookups.status(env)
    return layouts.status(ctx.stack, rows, awaiting(env, [r["recipe"] for r in rows]))


@click.command()
@click.argument("recipe", shell_complete=complete_recipe)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="Newest N builds (N >= 1).")
@pass_ctx
@command_errors
def history(ctx: CliContext, recipe: str, limit: int) -> Result:
    """Builds of RECIPE, newest first, with the console tail of each failure."""
    return layouts.history(recipe, lookups.history(connect(ctx.aws, ctx.stack), recipe, limit))


@click.command()
@click.argument("recipe", shell_complete=complete_recipe)
@click.option("--in-region", "region", default=None, help="Region of the copy (default: home).")
@pass_ctx
@command_errors
def latest(ctx: CliContext, recipe: str, region: str | None) -> Result:
    """The newest AVAILABLE image of RECIPE (one catalog Query)."""
    return layouts.latest(recipe, lookups.latest(connect(ctx.aws, ctx.stack), recipe, region))


@click.command("retire")
@click.argument("recipes", nargs=-1, required=True, shell_complete=complete_recipe)
@click.option("--purge", is_flag=True,
              help="Also delete their latest parameters and every image nothing uses.")
@pass_ctx
@command_errors
def retire_cmd(ctx: CliContext, recipes: tuple[str, ...], purge: bool) -> Result:
    """Retire published RECIPEs: nothing builds them any more; their images stay under
    retention and `latest` keeps answering. Publishing one again brings it back.

    With --purge, their /amiforge/<recipe>/latest parameters are deleted and every image
    of theirs that nothing uses is removed (the deletion gate keeps those in use)."""
    env = connect(ctx.aws, ctx.stack)
    if purge:
        return layouts.purged(purge_recipes(env, recipes))
    return layouts.retired(retire(env, recipes))


COMMANDS = [deploy, destroy, publish_cmd, plan_cmd, detect_cmd, build, status, history,
            latest, retire_cmd]
