"""Recipe commands that need no AWS: ``amiforge validate DIR``.

Loading does all the checking (:func:`amiforge.core.recipes.load_recipes`); an invalid
recipe raises RecipeInvalid, which :func:`amiforge.cli.command.command_errors` prints one
problem per line before exiting 2. The scripts are then linted (:mod:`amiforge.ops.lint`):
errors exit 2 the same way; warnings go to stderr and leave the exit code alone, unless
``--strict``.
"""

from __future__ import annotations

from pathlib import Path

import click

from amiforge.cli import layouts
from amiforge.cli.command import command_errors
from amiforge.cli.render import Result
from amiforge.core import rules
from amiforge.core.assets import comma_list
from amiforge.core.recipes import load_recipes
from amiforge.errors import InvalidInput, RecipeInvalid
from amiforge.ops.lint import lint_recipes
from amiforge.ops.publish import profile_problems


@click.command()
@click.argument("path", type=click.Path(path_type=Path), metavar="DIR")
@click.option("--base-parameter-prefixes", default="", metavar="PREFIXES",
              help="The stack's BaseParameterPrefixes (comma-separated, like /golden/): base "
                   "parameters may be under /aws/service/ or these.")
@click.option("--allowed-instance-profiles", default=None, metavar="NAMES",
              help="The stack's AllowedInstanceProfiles (comma-separated): a recipe's "
                   "build.instance_profile must be one of them.")
@click.option("--strict", is_flag=True, help="Treat warnings (e.g. IMDSv1 calls) as errors.")
@command_errors
def validate(path: Path, base_parameter_prefixes: str, allowed_instance_profiles: str | None,
             strict: bool) -> Result:
    """Check the recipes in DIR (or one recipe file) without touching AWS."""
    try:
        prefixes = rules.parse_base_prefixes(base_parameter_prefixes)
    except ValueError as err:
        raise InvalidInput(f"--base-parameter-prefixes: {err}") from None
    recipes = load_recipes(path, base_prefixes=prefixes)
    if allowed_instance_profiles is not None:
        refused = profile_problems(recipes, comma_list(allowed_instance_profiles))
        if refused:
            raise RecipeInvalid(refused)
    report = lint_recipes(recipes, strict=strict)
    if report.errors:
        raise RecipeInvalid(report.errors)
    for warning in report.warnings:
        click.echo(f"amiforge: warning: {warning}", err=True)
    return layouts.validated(recipes)


COMMANDS = [validate]
