"""``amiforge`` command line: global options and command registration.

Each command module exposes ``COMMANDS`` (a list of click commands); this module imports
them and registers them, and no command module imports this one. Commands return a
:class:`~amiforge.cli.render.Result`; :func:`amiforge.cli.command.command_errors` renders
it, sets the exit code and turns expected errors into one line.

Global options work before or after the command, as with the AWS CLI
(``amiforge plan DIR --output json``): :class:`GlobalOptionsGroup` moves them in front of
the command, unless the command has an option of the same name itself.
"""

from __future__ import annotations

import click

from amiforge import __version__
from amiforge.cli import (
    approval_cmd,
    cancel_cmd,
    cleanup_cmd,
    demo_cmd,
    fleet_cmd,
    local_cmd,
    pipeline_cmd,
    recipes_cmd,
    rollback_cmd,
)
from amiforge.cli.context import DEFAULT_STACK, CliContext

# Global options that take a value; ``--opt value`` and ``--opt=value`` are both moved.
GLOBAL_OPTIONS = ("--endpoint-url", "--region", "--profile", "--stack", "--output")


def _options_of(command: click.Command) -> set[str]:
    """Every option name ``command`` (or, for a group, any of its commands) declares."""
    names = {name for param in command.params if isinstance(param, click.Option)
             for name in (*param.opts, *param.secondary_opts)}
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            names |= _options_of(sub)
    return names


class GlobalOptionsGroup(click.Group):
    """Accepts the global options after the command too, as the AWS CLI does."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, self._hoist(ctx, list(args)))

    def _hoist(self, ctx: click.Context, args: list[str]) -> list[str]:
        position = self._command_position(args)
        if position is None:
            return args
        command = self.get_command(ctx, args[position])
        if command is None:
            return args
        own = _options_of(command)
        front, rest, i = args[:position], [args[position]], position + 1
        while i < len(args):
            token = args[i]
            if token == "--":
                rest += args[i:]
                break
            name = token.split("=", 1)[0]
            if name in GLOBAL_OPTIONS and name not in own:
                if "=" in token or i + 1 >= len(args):
                    front.append(token)
                    i += 1
                else:
                    front += [token, args[i + 1]]
                    i += 2
                continue
            rest.append(token)
            i += 1
        return front + rest

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Each command's whole first sentence, wrapped, never cut with "..."."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    @staticmethod
    def _command_position(args: list[str]) -> int | None:
        i = 0
        while i < len(args):
            token = args[i]
            if token in GLOBAL_OPTIONS:
                i += 2
            elif token.startswith("-"):
                i += 1
            else:
                return i
        return None


@click.group(cls=GlobalOptionsGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="amiforge")
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", default=None,
              help="AWS endpoint (the local cloud's URL). Default: $AWS_ENDPOINT_URL.")
@click.option("--region", envvar=["AWS_REGION", "AWS_DEFAULT_REGION"], default=None,
              help="AWS region. Default: $AWS_REGION, then $AWS_DEFAULT_REGION.")
@click.option("--profile", envvar="AWS_PROFILE", default=None,
              help="Named AWS profile. Default: $AWS_PROFILE.")
@click.option("--stack", envvar="AMIFORGE_STACK", default=DEFAULT_STACK, show_default=True,
              help="Name of the amiforge CloudFormation stack. Default: $AMIFORGE_STACK.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@click.pass_context
def cli(ctx: click.Context, endpoint_url: str | None, region: str | None,
        profile: str | None, stack: str, output: str) -> None:
    """amiforge: a serverless golden-AMI factory for AWS.

    Global options may come before or after the command.
    """
    ctx.obj = CliContext(endpoint_url=endpoint_url or None, region=region or None,
                         profile=profile or None, stack=stack, output=output)


def _register() -> None:
    for module in (recipes_cmd, pipeline_cmd, cancel_cmd, approval_cmd, cleanup_cmd, demo_cmd,
                   local_cmd, rollback_cmd, fleet_cmd):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="amiforge")


if __name__ == "__main__":  # pragma: no cover
    main()
