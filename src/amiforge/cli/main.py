"""``amiforge`` command line: global options, command registration, error mapping.

Each command module exposes ``COMMANDS`` (a list of click commands). Commands return a
:class:`~amiforge.cli.render.Result`; :func:`command_errors` renders it and sets the exit
code. An expected error (:class:`~amiforge.errors.AmiforgeError`) becomes one line on
stderr and exit 1 or 2, never a traceback; under ``--output json`` that line is a JSON
object ``{"error": ..., "exit_code": ...}``.

Global options work before or after the command, as with the AWS CLI
(``amiforge plan DIR --output json``): :class:`GlobalOptionsGroup` moves them in front of
the command, unless the command has an option of the same name itself.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)
from botocore.parsers import ResponseParserError

from amiforge import __version__
from amiforge.cli.context import DEFAULT_STACK, CliContext
from amiforge.cli.render import Result, render
from amiforge.errors import AmiforgeError, RecipeInvalid

# Global options that take a value; ``--opt value`` and ``--opt=value`` are both moved.
GLOBAL_OPTIONS = ("--endpoint-url", "--region", "--profile", "--stack", "--output")


def _output() -> str:
    ctx = click.get_current_context(silent=True)
    found = ctx.find_object(CliContext) if ctx else None
    return found.output if found else "text"


def fail(message: str, code: int, problems: list[str] | None = None) -> None:
    """One line on stderr (one per problem), or one JSON object under --output json."""
    if _output() == "json":
        error: dict[str, Any] = {"error": message, "exit_code": code}
        if problems:
            error["problems"] = problems
        click.echo(json.dumps(error, sort_keys=True), err=True)  # one line, for logs
    else:
        for line in problems or [message]:
            click.echo(f"amiforge: error: {line}", err=True)
    sys.exit(code)


def command_errors(fn: Callable[..., Result]) -> Callable[..., None]:
    """Run a command, render its Result, and map expected errors to one line + exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        ctx: CliContext = click.get_current_context().find_object(CliContext)
        try:
            result = fn(*args, **kwargs)
        except RecipeInvalid as err:
            # Every problem on its own line, so one run shows them all.
            fail(str(err), err.exit_code, [str(p) for p in err.problems or [err]])
        except AmiforgeError as err:
            fail(str(err), err.exit_code)
        except NoCredentialsError:
            fail("no AWS credentials found; configure a profile or set AWS_ACCESS_KEY_ID "
                 "(for the local cloud any dummy value works)", 2)
        except NoRegionError:
            fail("no AWS region set; pass --region or set AWS_REGION", 2)
        except EndpointConnectionError as err:
            endpoint = err.kwargs.get("endpoint_url", "the endpoint")
            if ctx.endpoint_url:
                fail(f"cannot reach {endpoint}; is the local cloud running "
                     "(`amiforge local up`) and --endpoint-url right?", 1)
            fail(f"cannot reach {endpoint}; check the network and --region "
                 "(set --endpoint-url or AWS_ENDPOINT_URL to use the local cloud)", 1)
        except ResponseParserError:
            fail(f"the endpoint {ctx.endpoint_url or 'of AWS'} did not answer as an AWS API "
                 "would (is --endpoint-url a local cloud, or --region a real region?)", 2)
        except ClientError as err:
            error = err.response.get("Error", {})
            fail(f"{err.operation_name}: {error.get('Code')}: {error.get('Message')}", 1)
        except BotoCoreError as err:
            fail(str(err), 1)
        else:
            render(result, ctx.output)
            if result.exit_code:
                sys.exit(result.exit_code)

    return wrapper


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
    from amiforge.cli import (
        cancel_cmd,
        cleanup_cmd,
        demo_cmd,
        local_cmd,
        pipeline_cmd,
        recipes_cmd,
        rollback_cmd,
    )

    for module in (recipes_cmd, pipeline_cmd, cancel_cmd, cleanup_cmd, demo_cmd, local_cmd,
                   rollback_cmd):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="amiforge")


if __name__ == "__main__":  # pragma: no cover
    main()
