"""Detection's AWS calls per day, against each recipe checking its own base.

Pure arithmetic over what ``bench/detect.py`` measures (calls per detection run, at each
recipe count) and the stack's ``DetectSchedule`` (read from the template by the caller):

    amiforge calls/day    = calls per run (measured)  x runs per day (the schedule)
    per-recipe calls/day  = recipes x checks per day x calls per check (measured: 1)

The naive way needs no listing of recipes (each recipe's own schedule knows its base), so
its check is the one DescribeImages per recipe that ``bench/detect.py``'s loop makes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fractions import Fraction

_RATE = re.compile(r"rate\(\s*([1-9]\d*)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_MINUTES = {"minute": 1, "hour": 60, "day": 24 * 60}
DAILY, HOURLY = 1, 24  # the per-recipe check's schedules compared against


def runs_per_day(expression: str) -> Fraction:
    """Runs a day of an EventBridge ``rate(...)`` schedule (``rate(1 hour)`` -> 24)."""
    match = _RATE.fullmatch(expression.strip())
    if not match:
        raise ValueError(
            f"DetectSchedule {expression!r}: only a rate(N minutes|hours|days) schedule has a "
            "fixed number of runs a day; give this script a rate() expression")
    minutes = int(match.group(1)) * _MINUTES[match.group(2).rstrip("s")]
    return Fraction(24 * 60, minutes)


def calls_per_day(calls_per_run: float, runs: Fraction | float) -> float:
    """Calls a day of something making ``calls_per_run`` calls, ``runs`` times a day."""
    if calls_per_run < 0 or runs < 0:
        raise ValueError(f"calls per run ({calls_per_run}) and runs a day ({runs}) "
                         "cannot be negative")
    return float(calls_per_run * runs)


def per_recipe_calls_per_day(recipes: int, checks_per_day: int,
                             calls_per_check: float = 1.0) -> float:
    """Calls a day when each of ``recipes`` checks its own base ``checks_per_day`` times."""
    return calls_per_day(recipes * calls_per_check, checks_per_day)


def crossover(amiforge_per_run: Mapping[int, int], runs: Fraction | float,
              checks_per_day: int, calls_per_check: float = 1.0) -> int | None:
    """The fewest recipes from which amiforge makes fewer calls a day than each recipe
    checking its own base ``checks_per_day`` times; None if the measured sizes do not pin
    it down.

    ``amiforge_per_run``: calls per detection run, measured at some recipe counts. A run's
    calls never fall as recipes are added (pages, lookups and batches only grow), so
    between two measured sizes with the same count, every size has that count: the
    crossover is solved for exactly there. Where it falls between two sizes whose counts
    differ, or below the smallest size measured, it is not known (None).
    """
    if checks_per_day <= 0 or calls_per_check <= 0:
        raise ValueError(f"checks a day ({checks_per_day}) and calls per check "
                         f"({calls_per_check}) must be positive")
    rate, each = Fraction(runs), Fraction(checks_per_day) * Fraction(calls_per_check)

    def cheaper(n: int, calls: int) -> bool:
        return calls * rate < n * each

    sizes = sorted(amiforge_per_run)
    if not sizes:
        return None
    if cheaper(sizes[0], amiforge_per_run[sizes[0]]):
        return sizes[0] if sizes[0] == 1 else None
    for low, high in zip(sizes, sizes[1:], strict=False):
        calls = amiforge_per_run[low]
        if calls == amiforge_per_run[high]:
            # Fewest n with calls x rate < n x each: n > calls x rate / each.
            n = max(low, int(calls * rate / each) + 1)
            if n <= high:
                return n
        elif cheaper(high, amiforge_per_run[high]):
            return None  # crosses somewhere between two different counts
    return None
