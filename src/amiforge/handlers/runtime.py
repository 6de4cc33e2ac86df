"""What every Lambda entry point shares: a structured logger and the step environment.

A handler is ``handler = lambda_handler(step_function, schema)``: it checks the event
against its schema (:mod:`amiforge.core.events`; a bad one raises ``InvalidEvent`` naming
the field before the step sees it), logs the event's identity, calls one step with the event and a :class:`StepEnv` built once per container (warm
starts reuse clients), and lets domain errors propagate so that Step Functions' Retry
and Catch match on their class name. Transport failures that outlived botocore's retries
are raised as :class:`~amiforge.errors.TransientAwsError`, which the state machine retries.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from amiforge.core import events
from amiforge.errors import AmiforgeError, TransientAwsError

if TYPE_CHECKING:
    from amiforge.steps.env import StepEnv

logger = Logger(service="amiforge", level=os.environ.get("AMIFORGE_LOG_LEVEL", "INFO"))



def transport_errors() -> tuple[type[Exception], ...]:
    """Failures of the transport, not answers from AWS: worth another try. (Imported
    when a step has failed: botocore's parsers are the step's import, not this module's.)"""
    from botocore.exceptions import ConnectionError as BotocoreConnectionError
    from botocore.exceptions import HTTPClientError
    from botocore.parsers import ResponseParserError
    return (HTTPClientError, BotocoreConnectionError, ResponseParserError)

_env: StepEnv | None = None


def step_env() -> StepEnv:
    global _env
    if _env is None:
        # Imported here, with the step (handlers/pipeline.py imports no step module).
        from amiforge.steps.env import StepEnv
        _env = StepEnv.from_environ()
    return _env


Schema = events.Obj | Callable[[Any], None] | None


def validate(event: Any, schema: Schema, name: str) -> None:
    """Check ``event`` by an :class:`~amiforge.core.events.Obj` or a checking function.

    ``None`` is for a function whose messages another module checks one by one (the SQS
    cleanup consumer reports each bad message as a batch item failure).
    """
    if isinstance(schema, events.Obj):
        events.check(event, schema, name)
    elif schema is not None:
        schema(event)


def _short(value: Any) -> str | None:
    return None if value is None else str(value)[:80]


def lambda_handler(step: Callable[[Any, StepEnv], Any],
                   schema: Schema = None) -> Callable[..., Any]:
    """The Lambda entry point for ``step``: the event is checked against ``schema`` and
    only then handed to the step, as the typed event it declares (``DetectEvent``...)."""
    @logger.inject_lambda_context(log_event=False)
    def handler(event: dict[str, Any], context: Any) -> Any:
        build = event.get("build", event) if isinstance(event, dict) else {}
        build = build if isinstance(build, dict) else {}  # not yet checked: log it safely
        logger.append_keys(step=step.__name__, recipe=_short(build.get("recipe")),
                           build_id=_short(build.get("build_id")))
        try:
            validate(event, schema, step.__name__)
            result = step(event, step_env())
        except AmiforgeError as err:
            logger.warning("step failed", extra={"error": type(err).__name__,
                                                 "reason": str(err)})
            raise
        except Exception as err:
            if isinstance(err, transport_errors()):
                # botocore's own retries are spent (a dropped connection, a timeout, an
                # unparsable 5xx page): the state machine backs off and re-runs the step,
                # which is idempotent.
                logger.warning("step failed", extra={"error": type(err).__name__,
                                                     "reason": str(err)})
                raise TransientAwsError(f"{type(err).__name__}: {err}") from err
            logger.exception("step crashed")
            raise
        # The result says what the step decided (resumed, relaunch, skipped...): log it,
        # trimmed, so every build can be followed in CloudWatch.
        logger.info("step done", extra={"result": json.dumps(result, default=str)[:2000]})
        return result

    return handler
