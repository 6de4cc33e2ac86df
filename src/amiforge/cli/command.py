"""How every command ends: its :class:`~amiforge.cli.render.Result` rendered, or an
expected error as one line and an exit code.

An expected error (:class:`~amiforge.errors.AmiforgeError`) becomes one line on stderr and
exit 1 or 2, never a traceback; under ``--output json`` that line is a JSON object
``{"error": ..., "exit_code": ...}``. Command modules import :func:`command_errors` from
here, and :mod:`amiforge.cli.main` imports the command modules to register them, so the
dependency runs one way.
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

from amiforge.cli.context import CliContext
from amiforge.cli.render import Result, render
from amiforge.errors import AmiforgeError, RecipeInvalid


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
        ctx = click.get_current_context().find_object(CliContext) or CliContext()
        try:
            result = fn(*args, **kwargs)
        except RecipeInvalid as err:
            # Every problem on its own line, so one run shows them all.
            fail(str(err), err.exit_code, [str(p) for p in err.problems] or [str(err)])
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
