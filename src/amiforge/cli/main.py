"""``amiforge`` command line: global options, command registration, error mapping.

Each command module exposes ``COMMANDS`` (a list of click commands). Commands return a
:class:`~amiforge.cli.render.Result`; :func:`run_command` renders it and sets the exit
code. An expected error (:class:`~amiforge.errors.AmiforgeError`) becomes one line on
stderr and exit 1 or 2, never a traceback.
"""

from __future__ import annotations

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

from amiforge import __version__
from amiforge.cli.context import DEFAULT_STACK, CliContext
from amiforge.cli.render import Result, render
from amiforge.errors import AmiforgeError, RecipeInvalid


def fail(message: str, code: int) -> None:
    click.echo(f"amiforge: error: {message}", err=True)
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
            for problem in err.problems or [err]:
                click.echo(f"amiforge: error: {problem}", err=True)
            sys.exit(err.exit_code)
        except AmiforgeError as err:
            fail(str(err), err.exit_code)
        except NoCredentialsError:
            fail("no AWS credentials found; configure a profile or set AWS_ACCESS_KEY_ID "
                 "(for the local cloud any dummy value works)", 2)
        except NoRegionError:
            fail("no AWS region set; pass --region or set AWS_DEFAULT_REGION", 2)
        except EndpointConnectionError as err:
            fail(f"cannot reach {err.kwargs.get('endpoint_url', 'the endpoint')}; is the "
                 "local cloud running (`amiforge local up`) or --endpoint-url right?", 1)
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="amiforge")
@click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL", default=None,
              help="AWS endpoint (the local cloud's URL). Default: $AWS_ENDPOINT_URL.")
@click.option("--region", envvar="AWS_DEFAULT_REGION", default=None, help="AWS region.")
@click.option("--stack", default=DEFAULT_STACK, show_default=True,
              help="Name of the amiforge CloudFormation stack.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Output format.")
@click.pass_context
def cli(ctx: click.Context, endpoint_url: str | None, region: str | None, stack: str,
        output: str) -> None:
    """amiforge: a serverless golden-AMI factory for AWS."""
    ctx.obj = CliContext(endpoint_url=endpoint_url, region=region, stack=stack, output=output)


def _register() -> None:
    from amiforge.cli import (
        cancel_cmd,
        cleanup_cmd,
        demo_cmd,
        local_cmd,
        pipeline_cmd,
        recipes_cmd,
    )

    for module in (recipes_cmd, pipeline_cmd, cancel_cmd, cleanup_cmd, demo_cmd, local_cmd):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="amiforge")


if __name__ == "__main__":  # pragma: no cover
    main()
