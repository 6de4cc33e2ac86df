"""Rate limits as arithmetic: amiforge's launch pacing and EC2's token buckets. Pure.

EC2 meters each API action per account and region with a token bucket: RunInstances
holds 5 tokens and refills 2 a second. A burst of builds (50 recipes published at once)
must not spend the account's bucket, or every RunInstances in the account, amiforge's
and everyone else's, is refused with ``RequestLimitExceeded``.

amiforge paces its own RunInstances with GCRA (the generic cell rate algorithm, the
token bucket expressed as one number): a shared *theoretical arrival time* ``tat`` is
stored in DynamoDB; a launch reserves the next conforming slot with a conditional write
and waits for it. :func:`reserve` is that arithmetic. :func:`bucket_violations` and
:func:`peak_in_window` judge a sequence of call times against a bucket (the local
cloud's measurements use them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# EC2's documented bucket for RunInstances (per account and region).
EC2_RUN_INSTANCES_BURST = 5
EC2_RUN_INSTANCES_PER_SECOND = 2.0
# amiforge's own pace stays below it, leaving room for the account's other callers and
# for clock skew between Lambda hosts.
DEFAULT_LAUNCH_BURST = 4
DEFAULT_LAUNCH_PER_SECOND = 1.5


@dataclass(frozen=True)
class Reservation:
    """The outcome of asking for a slot at ``now``."""

    wait: float          # seconds from now until the slot (0: go at once)
    new_tat: float       # the theoretical arrival time to store if the slot is taken


def check_limits(burst: int, per_second: float) -> None:
    if burst < 1:
        raise ValueError(f"burst must be at least 1, got {burst}")
    if per_second <= 0:
        raise ValueError(f"rate must be positive, got {per_second}")


def reserve(tat: float | None, now: float, *, burst: int, per_second: float) -> Reservation:
    """The next slot that conforms to a bucket of ``burst`` tokens refilled ``per_second``.

    GCRA: with emission interval ``T = 1/per_second`` and tolerance ``(burst - 1) * T``,
    a call at ``s`` conforms when ``max(tat, s) - s <= tolerance``. The earliest such
    ``s >= now`` is ``max(now, tat - tolerance)``, and taking it moves ``tat`` to
    ``max(tat, now) + T``. A sequence of calls each made no earlier than its slot
    therefore never finds the bucket empty.
    """
    check_limits(burst, per_second)
    interval = 1.0 / per_second
    tolerance = (burst - 1) * interval
    current = now if tat is None else tat
    slot = max(now, current - tolerance)
    return Reservation(wait=slot - now, new_tat=max(current, now) + interval)


def bucket_violations(times: Sequence[float], *, burst: int, per_second: float) -> int:
    """How many of the calls at ``times`` would have found the bucket empty.

    The bucket starts full; each call spends one token; tokens refill continuously at
    ``per_second`` up to ``burst``. A refused call spends nothing (as EC2 counts).
    """
    check_limits(burst, per_second)
    tokens, last, refused = float(burst), None, 0
    for when in sorted(times):
        if last is not None:
            tokens = min(float(burst), tokens + (when - last) * per_second)
        last = when
        # A hair of tolerance: times are floats from different clocks of one host.
        if tokens >= 1.0 - 1e-6:
            tokens -= 1.0
        else:
            refused += 1
    return refused


def peak_in_window(times: Sequence[float], window: float = 1.0) -> int:
    """The most calls in any half-open window of ``window`` seconds."""
    ordered = sorted(times)
    peak, start = 0, 0
    for end, when in enumerate(ordered):
        while ordered[start] <= when - window:
            start += 1
        peak = max(peak, end - start + 1)
    return peak
