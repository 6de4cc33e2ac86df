"""Launch pacing arithmetic: GCRA slots always conform to the bucket they are cut from."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amiforge.core import ratelimit
from amiforge.core.ratelimit import bucket_violations, peak_in_window, reserve


def slots(arrivals: list[float], *, burst: int, per_second: float) -> list[float]:
    """Each caller arrives, reserves, and calls at its slot (as the Launch step does)."""
    tat, out = None, []
    for now in sorted(arrivals):
        reservation = reserve(tat, now, burst=burst, per_second=per_second)
        tat = reservation.new_tat
        out.append(now + reservation.wait)
    return out


def test_a_burst_goes_at_once_then_one_per_interval() -> None:
    times = slots([0.0] * 7, burst=4, per_second=2.0)
    assert times == pytest.approx([0, 0, 0, 0, 0.5, 1.0, 1.5])


def test_an_idle_bucket_refills_to_its_burst_and_no_further() -> None:
    times = slots([0.0] * 4 + [100.0] * 6, burst=4, per_second=2.0)
    assert times[4:] == pytest.approx([100, 100, 100, 100, 100.5, 101.0])


def test_ec2_bucket_arithmetic() -> None:
    assert bucket_violations([0.0] * 5, burst=5, per_second=2) == 0
    assert bucket_violations([0.0] * 6, burst=5, per_second=2) == 1
    assert bucket_violations([0.0] * 5 + [0.5], burst=5, per_second=2) == 0
    assert bucket_violations([0.0] * 5 + [0.4, 0.45], burst=5, per_second=2) == 2
    assert bucket_violations([], burst=5, per_second=2) == 0


def test_peak_in_window() -> None:
    assert peak_in_window([]) == 0
    assert peak_in_window([0, 0.2, 0.9, 1.0, 1.1, 3]) == 4
    assert peak_in_window([0, 1, 2, 3]) == 1


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="burst must be at least 1"):
        reserve(None, 0.0, burst=0, per_second=1)
    with pytest.raises(ValueError, match="rate must be positive"):
        reserve(None, 0.0, burst=1, per_second=0)


@settings(max_examples=200, deadline=None)
@given(arrivals=st.lists(st.floats(0, 120, allow_nan=False), max_size=80),
       burst=st.integers(1, 8), per_second=st.floats(0.2, 10))
def test_reserved_slots_never_find_the_bucket_empty(arrivals: list[float], burst: int,
                                                    per_second: float) -> None:
    times = slots(arrivals, burst=burst, per_second=per_second)
    assert bucket_violations(times, burst=burst, per_second=per_second) == 0
    assert all(t >= a for t, a in zip(times, sorted(arrivals), strict=True))


@settings(max_examples=100, deadline=None)
@given(arrivals=st.lists(st.floats(0, 60, allow_nan=False), max_size=120))
def test_amiforge_default_pace_stays_under_ec2_run_instances_bucket(arrivals: list[float]) -> None:
    times = slots(arrivals, burst=ratelimit.DEFAULT_LAUNCH_BURST,
                  per_second=ratelimit.DEFAULT_LAUNCH_PER_SECOND)
    assert bucket_violations(times, burst=ratelimit.EC2_RUN_INSTANCES_BURST,
                             per_second=ratelimit.EC2_RUN_INSTANCES_PER_SECOND) == 0
    assert peak_in_window(times, 1.0) <= ratelimit.EC2_RUN_INSTANCES_BURST
