"""Commands that talk to a deployed stack: deploy, destroy, publish, build, status, history,
latest. Each returns a Result; nothing here prints except progress (to stderr)."""

from __future__ import annotations

from pathlib import Path

import click

from amiforge.aws.catalog import AVAILABLE, FAILED
from amiforge.cli.complete import complete_recipe
from amiforge.cli.context import CliContext
from amiforge.cli.main import command_errors
from amiforge.cli.progress import build_progress, err_console, line_progress
from amiforge.cli.render import Result
from amiforge.cli.rollback_cmd import rollback_lines
from amiforge.core.recipes import load_recipes
from amiforge.deploy import stack as stack_api
from amiforge.errors import InvalidInput, OperationFailed, RecipeInvalid
from amiforge.ops import lifecycle, lookups, uninstall, views
from amiforge.ops.builds import ALREADY_BUILT, start_builds, wait_for_builds
from amiforge.ops.connect import connect
from amiforge.ops.lint import lint_recipes
from amiforge.ops.plan import plan
from amiforge.ops.publish import git_commit, missing_from, publish, retire
from amiforge.ops.purge import purge as purge_recipes
from amiforge.steps.detect import detect
from amiforge.steps.env import StepEnv

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
    overrides = {}
    for item in parameters:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--parameter")
        overrides[key] = value
    deployed = stack_api.deploy_stack(ctx.aws, ctx.stack, overrides,
                                      reset_parameters=reset_parameters,
                                      progress=line_progress())
    changes = [c.as_dict() for c in deployed.changes]
    lines = [f"parameter {c['parameter']}: {c['old'] if c['old'] is not None else '(unset)'}"
             f" -> {c['new'] if c['new'] is not None else '(unset)'}" for c in changes]
    lines = lines or ["parameters: no change"]
    lines += [f"re-attached the retained table {table} ({parameter}): history, latest and "
              "retention carry on" for parameter, table in sorted(deployed.reattached.items())]
    return Result(data=views.versioned(stack=ctx.stack, outputs=deployed.outputs,
                                       parameter_changes=changes,
                                       reattached=deployed.reattached),
                  title=f"stack {ctx.stack}", columns=("output", "value"),
                  rows=sorted(deployed.outputs.items()), lines=lines)


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
    tables = " and ".join(sorted(done["retained"].values()))
    lines = _cancelled_lines(done["cancelled"])
    lines.append(f"deleted stack {ctx.stack}; kept its catalog and recipe tables ({tables}; "
                 "`amiforge deploy` of the same stack name re-attaches them), the images "
                 "and the /amiforge/<recipe>/latest parameters" if tables else
                 f"deleted stack {ctx.stack} (it had no tables)")
    return Result(data=views.versioned(**done), lines=lines)


def _cancelled_lines(cancelled: list[dict]) -> list[str]:
    return [f"stopped build {b['build_id']} ({lifecycle.STACK_DESTROYED}); terminated "
            f"{len(b['terminated'])} instance(s), removed {len(b['deregistered'])} image(s)"
            for b in cancelled]


def _uninstall(ctx: CliContext, *, force: bool, yes: bool) -> Result:
    plan = uninstall.plan_uninstall(ctx.aws, ctx.stack)
    if not yes:
        listing = [f"stack {plan.stack}" if plan.stack_exists else
                   f"stack {plan.stack}: already deleted",
                   f"tables {plan.catalog_table} and {plan.recipes_table}",
                   (f"bucket {plan.bucket}" if not plan.bucket_users else
                    f"bucket {plan.bucket}: kept, used by {', '.join(plan.bucket_users)}"),
                   *(f"parameter {p['name']} in {p['region']}" for p in plan.parameters),
                   *(f"image {image_id} in {region} ({b['recipe']}, build {b['build_id']})"
                     for b in plan.images for region, image_id in sorted(b["images"].items())),
                   "(an image still in use is kept)"]
        click.echo("amiforge destroy --delete-data will delete:\n  " + "\n  ".join(listing),
                   err=True)
        _confirm(f"Delete stack {ctx.stack} and all of its data?")
    done = uninstall.uninstall(ctx.aws, plan, force=force, progress=line_progress())
    kept = [b for b in done["images"] if str(b["outcome"]).startswith("kept")]
    lines = _cancelled_lines(done["cancelled"])
    lines.append(f"deleted stack {ctx.stack}, {len(done['images']) - len(kept)} image(s), "
                 f"{len(done['parameters_deleted'])} parameter(s), the tables "
                 f"{', '.join(done['tables_deleted'])}"
                 + (f" and the bucket {', '.join(done['bucket_deleted'])}"
                    if done["bucket_deleted"] else
                    f"; kept the bucket (used by {', '.join(done['bucket_kept_for'])})"))
    lines += [f"kept image {b['image_id']} ({b['recipe']}): {b['outcome']}" for b in kept]
    return Result(data=views.versioned(**done), lines=lines)


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
    if prune and not directory.is_dir():
        raise InvalidInput(f"--prune retires every published recipe {directory} lacks: give "
                           "the recipe directory, not one recipe file")
    recipes = load_recipes(directory)
    lint = lint_recipes(recipes)  # the same script checks as validate, before any write
    if lint.errors:
        raise RecipeInvalid(lint.errors)
    env = connect(ctx.aws, ctx.stack)
    results = publish(env, recipes, git_commit(directory))
    # One recipe file says nothing about the others: only a directory names what is gone.
    missing = missing_from(env, recipes) if directory.is_dir() else []
    if missing and prune:
        retire(env, missing)
        warn(f"retired {', '.join(missing)}: no longer in {directory} "
             "(images kept under retention; `latest` still answers)")
    elif missing:
        warn(f"published but not in {directory}: {', '.join(missing)} "
             "(`amiforge publish --prune` or `amiforge retire` retires them)")
    building: dict[str, dict] = {}
    released: dict[str, str] = {}
    why_not: dict[str, str] = {}
    if not no_detect:
        report = detect({"recipes": [r.name for r in recipes], "trigger": "publish"}, env)
        # Why nothing started, for the table: "up to date", "base not found: ..." (a
        # Windows base the local cloud has not released yet, say).
        why_not = {d["recipe"]: (f"{d['reason']}: {d['detail']}" if d.get("detail")
                                 else d["reason"]) for d in report["decisions"]}
        # "already started": a detection running at the same moment (the schedule)
        # started the very build this publish implies; it is reported the same way.
        building = {d["recipe"]: d for d in report["decisions"]
                    if d.get("outcome") in ("started", "already started")}
        released = {d["recipe"]: d["build_id"] for d in report["decisions"]
                    if d.get("outcome") == "re-released"}
    for r in results:
        decision = building.get(r["recipe"], {})
        r["build_started"] = decision.get("build_id")
        r["build_outcome"] = decision.get("outcome")
        r["re_released"] = released.get(r["recipe"])
    if wait:
        follow = [{"recipe": r["recipe"], "build_id": r["build_started"]}
                  for r in results if r["build_started"]]
        return _waited(env, follow, timeout, title="published builds",
                       published=views.published(results))
    return Result(data=views.versioned(recipes=views.published(results)), title="published",
                  columns=("recipe", "hash", "changed", "git commit", "build started"),
                  rows=[(r["recipe"], r["hash"][:12], "yes" if r["changed"] else "no",
                         r["git_commit"] or "-",
                         _started_text(r, why_not.get(r["recipe"])))
                        for r in results])


def _started_text(r: dict, why_not: str | None = None) -> str:
    if r["re_released"]:
        return f"- (re-released {r['re_released']})"
    if r["build_outcome"] == "already started":
        return f"{r['build_started']} (by a concurrent detection)"
    if r["build_started"]:
        return str(r["build_started"])
    return f"- ({why_not})" if why_not else "-"


@click.command("plan")
@click.argument("directory", type=click.Path(path_type=Path))
@pass_ctx
@command_errors
def plan_cmd(ctx: CliContext, directory: Path) -> Result:
    """Say which recipes in DIRECTORY would build and why. Changes nothing."""
    decisions = plan(connect(ctx.aws, ctx.stack), load_recipes(directory))
    return Result(data=views.plan(d.as_dict() for d in decisions), title="plan",
                  columns=("recipe", "action", "reason", "detail"),
                  rows=[(d.recipe, d.action, d.reason, d.detail) for d in decisions])


@click.command("detect")
@pass_ctx
@command_errors
def detect_cmd(ctx: CliContext) -> Result:
    """Run detection now: start a build for every stale published recipe."""
    report = detect({"trigger": "cli"}, connect(ctx.aws, ctx.stack))
    return Result(data=views.detect(report),
                  title=f"detect: {report['started']} build(s) started",
                  columns=("recipe", "action", "reason", "detail", "outcome"),
                  rows=[(d["recipe"], d["action"], d["reason"], d.get("detail", ""),
                         d.get("outcome", "-")) for d in report["decisions"]])


def warn(message: str) -> None:
    """A warning on stderr (stdout stays the command's result, JSON included)."""
    err_console().print(f"warning: {message}", markup=False, highlight=False)


def _build_rows(results: list[dict]) -> list[tuple]:
    return [(r["recipe"], r["build_id"], r.get("status"), r.get("image_id") or "-",
             r.get("reason") or "") for r in results]


def _waited(env: StepEnv, builds: list[dict], timeout: int, *, title: str,
            published: list[dict] | None = None) -> Result:
    """Follow ``builds`` with the progress display; exit 1 if one did not end AVAILABLE.
    ``published``: publish --wait shows the recipes it published too."""
    with build_progress(builds) as on_update:
        results = wait_for_builds(env, builds, on_update=on_update, timeout=timeout)
    failed = [r for r in results if r["status"] != AVAILABLE]
    lines = []
    for r in failed:
        tail = (r.get("record") or {}).get("console_tail")
        if tail:
            lines += [f"--- console tail of {r['build_id']} ---", *tail.splitlines()[-20:]]
    data = views.versioned(builds=[views.waited_build(r) for r in results])
    if published is not None:
        data["recipes"] = published
    return Result(data=data, title=title, columns=("recipe", "build id", "status", "image",
                                                   "reason"),
                  rows=_build_rows(results), lines=lines, exit_code=1 if failed else 0)


def _outcome(build: dict) -> str:
    if build["started"]:
        return "yes"
    if build["outcome"] == ALREADY_BUILT and build.get("image_id"):
        return f"no: already built ({build['image_id']}); `--rebuild` builds it again"
    if build["outcome"] == "revoked":
        return (f"no: build {build['build_id']} was revoked (`amiforge rollback`); "
                f"`amiforge release {build['build_id']}` brings it back, `--rebuild` builds "
                "it again")
    return f"no: {build['outcome']}"


@click.command()
@click.argument("recipes", nargs=-1, required=True, shell_complete=complete_recipe)
@click.option("--wait", is_flag=True, help="Follow the build(s) to the end, with progress.")
@click.option("--rebuild", is_flag=True,
              help="Build again a recipe version already built on its current base.")
@click.option("--timeout", default=7200, show_default=True, help="Seconds to wait at most.")
@pass_ctx
@command_errors
def build(ctx: CliContext, recipes: tuple[str, ...], wait: bool, rebuild: bool,
          timeout: int) -> Result:
    """Start a build of each published RECIPE now (exit 1 if a waited build failed).

    Every name is checked first: one that is not published starts nothing. A version
    already built on the current base is not built again without --rebuild."""
    env = connect(ctx.aws, ctx.stack)
    started = start_builds(env, recipes, rebuild=rebuild)
    if not wait:
        started = [{**b, "summary": _outcome(b)} for b in started]
        return Result(data=views.started_builds(started), title="builds",
                      columns=("recipe", "build id", "base ami", "started"),
                      rows=[(b["recipe"], b["build_id"], b["base_ami"], b["summary"])
                            for b in started])
    return _waited(env, started, timeout, title="builds")


@click.command()
@pass_ctx
@command_errors
def status(ctx: CliContext) -> Result:
    """Every published recipe: its newest build and its newest available image."""
    rows = lookups.status(connect(ctx.aws, ctx.stack))
    return Result(data=views.versioned(recipes=rows), title=f"amiforge status ({ctx.stack})",
                  columns=("recipe", "hash", "last build", "latest image", "reason"),
                  rows=[(r["recipe"], r["hash"][:12], r["summary"], r["latest_image"] or "-",
                         r["reason"] or "") for r in rows])


def attempt_lines(build: dict) -> list[str]:
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


@click.command()
@click.argument("recipe", shell_complete=complete_recipe)
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="Newest N builds (N >= 1).")
@pass_ctx
@command_errors
def history(ctx: CliContext, recipe: str, limit: int) -> Result:
    """Builds of RECIPE, newest first, with the console tail of each failure."""
    builds = lookups.history(connect(ctx.aws, ctx.stack), recipe, limit)
    lines = []
    for b in builds:
        lines += attempt_lines(b)
        lines += rollback_lines(b)
        if b.get("status") == FAILED and b.get("console_tail"):
            lines += [f"--- console tail of {b['build_id']} ---",
                      *b["console_tail"].splitlines()[-20:]]
    return Result(data=views.history(recipe, builds), title=f"history of {recipe}",
                  columns=("build id", "status", "image", "base ami", "created", "reason"),
                  rows=[(b["build_id"], b.get("status"), b.get("image_id") or "-",
                         b.get("base_ami"), b.get("created_at"), b.get("reason") or "")
                        for b in builds], lines=lines)


@click.command()
@click.argument("recipe", shell_complete=complete_recipe)
@click.option("--in-region", "region", default=None, help="Region of the copy (default: home).")
@pass_ctx
@command_errors
def latest(ctx: CliContext, recipe: str, region: str | None) -> Result:
    """The newest AVAILABLE image of RECIPE (one catalog Query)."""
    image = lookups.latest(connect(ctx.aws, ctx.stack), recipe, region)
    return Result(data=views.latest(recipe, image), lines=[image["ImageId"]])


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
    if purge:
        purged = purge_recipes(connect(ctx.aws, ctx.stack), recipes)
        return Result(data=views.versioned(purged=purged), title="retired and purged",
                      columns=("recipe", "parameters deleted", "images removed", "kept"),
                      rows=[(r["recipe"], ", ".join(r["parameters_deleted"]) or "-",
                             ", ".join(r["pruned"]) or "-",
                             "; ".join(f"{k['image_id']}: {k['reason']}" for k in r["kept"])
                             or "-") for r in purged])
    retired = retire(connect(ctx.aws, ctx.stack), recipes)
    return Result(data=views.versioned(retired=retired), title="retired",
                  columns=("recipe", "retired at", "latest image"),
                  rows=[(r["recipe"], r["retired_at"], r["latest_image"] or "-")
                        for r in retired])


COMMANDS = [deploy, destroy, publish_cmd, plan_cmd, detect_cmd, build, status, history,
            latest, retire_cmd]
