"""``amiforge demo``: the main job end to end on an embedded local cloud."""

from __future__ import annotations

from pathlib import Path

import click

from amiforge.cli.command import command_errors
from amiforge.cli.context import CliContext
from amiforge.cli.progress import build_progress, line_progress
from amiforge.cli.render import Result
from amiforge.errors import InvalidInput
from amiforge.ops import views
from amiforge.ops.demo import run_demo

pass_ctx = click.make_pass_decorator(CliContext)


@click.command()
@click.option("--recipes", "recipes_dir", type=click.Path(path_type=Path),
              default=Path("examples/recipes"), show_default=True,
              help="Directory of recipes to build.")
@click.option("--builder-seconds", default=2.0, show_default=True,
              help="How long a simulated build instance runs before it stops.")
@pass_ctx
@command_errors
def demo(ctx: CliContext, recipes_dir: Path, builder_seconds: float) -> Result:
    """Deploy, publish and build the example recipes on an embedded local cloud."""
    if not recipes_dir.is_dir():
        raise InvalidInput(f"recipe directory {recipes_dir} not found",
                           hint="run from the amiforge checkout or pass --recipes DIR")
    summary = run_demo(recipes_dir, stack=ctx.stack, builder_seconds=builder_seconds,
                       progress=line_progress(), make_progress=build_progress)
    rows = sorted((b["recipe"], b["build_id"], b["status"], b.get("image_id") or "-",
                    b.get("image_name") or "-") for b in summary["catalog"])
    failed = [b for b in summary["builds"] if b["status"] != "AVAILABLE"]
    lines = [f"{len(summary['builds']) - len(failed)} of {len(summary['builds'])} builds "
             f"AVAILABLE in {summary['seconds']} s"]
    lines += [f"FAILED {b['recipe']}: {b.get('reason')}" for b in failed]
    return Result(data=views.demo(summary), title="amiforge catalog (local cloud)",
                  columns=("recipe", "build id", "status", "image", "name"), rows=rows,
                  lines=lines, exit_code=0 if summary["ok"] else 1)


COMMANDS = [demo]
