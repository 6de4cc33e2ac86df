"""Step Functions Retry waits, scaled by the local cloud's ``retry_scale``.

moto 5.2.5 sleeps a Retrier's interval in real seconds (``RetrierDecl._eval_body``), as
AWS does. A state machine whose Task keeps failing (the Transient policy: 2, 4, 8, 16, 32
and 60 s, full jitter) then spends about a minute in retries before its Catch runs. The
local cloud's :attr:`~amiforge.localcloud.LocalCloud.retry_scale` multiplies every such
wait (default 1: as on AWS). A test of what happens after the retries are exhausted sets
it below 1 for the time it needs, and the machine still makes every attempt, in order,
and with the same errors; only the sleeps between them are shorter.

Everything else ``_eval_body`` does is moto's, line for line: the fingerprint pins it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from amiforge.localcloud.fills import Fill

_scale = 1.0
_sleep = time.sleep  # what waits (a test may watch it)


def retry_scale() -> float:
    return _scale


def set_retry_scale(scale: float) -> None:
    """Multiply every Retry wait by ``scale`` (positive; 1 is real time)."""
    global _scale
    if not scale > 0:
        raise ValueError(f"retry_scale must be positive, got {scale}")
    _scale = float(scale)


def _scaled_retrier(_original: Callable[..., Any]) -> Callable[..., Any]:
    from moto.stepfunctions.parser.asl.component.common.retry.max_attempts_decl import (
        MaxAttemptsOutcome,
    )
    from moto.stepfunctions.parser.asl.component.common.retry.retrier_outcome import (
        RetrierOutcome,
    )

    def _eval_body(self: Any, env: Any) -> None:
        self.error_equals.eval(env)
        if not env.stack.pop():  # this Retrier does not match the error
            env.stack.append(RetrierOutcome.Skipped)
            return
        self.max_attempts.eval(env=env)
        if env.stack.pop() == MaxAttemptsOutcome.EXHAUSTED:
            env.stack.append(RetrierOutcome.Failed)
            return
        self.interval_seconds.eval(env=env)
        self.backoff_rate.eval(env=env)
        self.max_delay_seconds.eval(env=env)
        self.jitter_strategy.eval(env=env)
        interval_seconds: float = env.stack.pop()
        _sleep(interval_seconds * _scale)
        env.stack.append(RetrierOutcome.Executed)

    return _eval_body


FILLS = [
    Fill("stepfunctions.retry-waits-scaled",
         "moto.stepfunctions.parser.asl.component.common.retry.retrier_decl:RetrierDecl",
         "_eval_body", _scaled_retrier, "48463fff19ce"),
]
