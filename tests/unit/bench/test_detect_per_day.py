"""Detection's calls per day (``bench/detect_per_day.py``): schedules, products, crossover."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
from detect_per_day import (  # noqa: E402
    DAILY,
    HOURLY,
    calls_per_day,
    crossover,
    per_recipe_calls_per_day,
    runs_per_day,
)


@pytest.mark.parametrize(("expression", "runs"), [
    ("rate(1 hour)", 24), ("rate(2 hours)", 12), ("rate(1 day)", 1), ("rate(3 days)", Fraction(1, 3)),
    ("rate(15 minutes)", 96), ("rate(1 minute)", 1440), (" rate( 7 minutes ) ", Fraction(1440, 7)),
])
def test_a_rate_schedule_has_its_runs_a_day(expression: str, runs: Fraction) -> None:
    assert runs_per_day(expression) == runs


@pytest.mark.parametrize("expression", ["cron(0 * * * ? *)", "rate(0 hours)", "rate(1 week)",
                                        "rate(-1 hours)", "hourly", ""])
def test_a_schedule_without_a_fixed_rate_is_refused_by_name(expression: str) -> None:
    with pytest.raises(ValueError) as caught:
        runs_per_day(expression)
    assert repr(expression) in str(caught.value) and "rate(" in str(caught.value)


def test_calls_a_day_are_calls_per_run_times_runs() -> None:
    assert calls_per_day(13, runs_per_day("rate(1 hour)")) == 312
    assert calls_per_day(3, Fraction(1, 3)) == 1
    assert per_recipe_calls_per_day(1000, HOURLY) == 24_000
    assert per_recipe_calls_per_day(1000, DAILY) == 1000
    assert per_recipe_calls_per_day(10, DAILY, calls_per_check=2) == 20
    with pytest.raises(ValueError, match="cannot be negative"):
        calls_per_day(-1, 24)


MEASURED = {1: 3, 10: 3, 100: 3, 1000: 13}  # calls per run, as bench/detect.py counts them


def test_the_crossover_is_solved_where_the_count_is_known() -> None:
    # Hourly detection (3 calls x 24 = 72 a day) against one check a day per recipe:
    # 72 recipes make 72 calls (a tie), 73 make more.
    assert crossover(MEASURED, 24, DAILY) == 73
    # Against an hourly check: 3 x 24 = 72 < n x 24 from n = 4.
    assert crossover(MEASURED, 24, HOURLY) == 4
    # Detection once a day against a daily check: 3 < n from n = 4.
    assert crossover(MEASURED, 1, DAILY) == 4


def test_a_crossover_between_different_counts_or_below_the_sizes_is_not_guessed() -> None:
    # 20 calls at 10 recipes, 40 at 100: hourly detection (480 to 960 a day) crosses the
    # daily check somewhere in 10..100 where the count is not known.
    assert crossover({10: 20, 100: 40}, 24, DAILY) is None
    # Already cheaper at the smallest size, and that size is not 1.
    assert crossover({10: 3, 100: 3}, 1, HOURLY) is None
    # Cheaper at one recipe: one is the answer.
    assert crossover({1: 1, 10: 1}, Fraction(1, 2), DAILY) == 1
    # Never cheaper over the sizes measured.
    assert crossover({1: 100, 10: 100}, 24, DAILY) is None
    assert crossover({}, 24, DAILY) is None
    with pytest.raises(ValueError, match="must be positive"):
        crossover(MEASURED, 24, 0)
