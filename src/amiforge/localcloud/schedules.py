"""Schedule rules that tick: ``rate(...)`` and ``cron(...)`` on an optionally fast clock.

moto stores ``ScheduleExpression`` but never fires it. :class:`Scheduler` is a thread
that, every ``tick`` real seconds, looks at every ENABLED rule with a schedule on every
bus of every region and fires the due ones through :func:`events.deliver` with the event
AWS sends (source ``aws.events``, detail-type ``Scheduled Event``, resources [rule ARN]).

Time is scaled: the emulated clock starts at the real time and runs ``time_scale`` times
faster, so ``time_scale=3600`` makes ``rate(1 hour)`` fire about every real second.
A rate rule first fires one period after the scheduler first sees it (as on AWS, roughly).
A cron rule fires when the emulated clock crosses a matching minute. A rule fires at
most once per tick: firings missed in between are coalesced rather than replayed
in a burst. A tick that reaches a Lambda target while that target's last tick is still
running is dropped (:func:`~amiforge.localcloud.lambda_runtime.invoke_async`), so a
fast clock never piles up invocations. The event's ``time`` is the real wall time, so functions comparing it with
``now`` stay sane.

Cron: AWS's six fields (minutes hours day-of-month month day-of-week year) with ``*``,
``?``, numbers, names (JAN, MON), ranges ``a-b``, steps ``*/n`` ``a/n`` ``a-b/n`` and
lists. ``L``, ``W`` and ``#`` are not supported: such a rule is logged and never fires.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {m: i for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1)}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}
# (low, high, names) per cron field
_FIELDS: tuple[tuple[int, int, dict[str, int]], ...] = ((0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (1, 7, _DAYS),
           (1970, 2199, {}))
_MAX_MINUTES_PER_TICK = 100_000


def rate_seconds(expression: str) -> int | None:
    """Period in seconds of ``rate(N unit)``, or None if it is not a rate expression."""
    match = _RATE.match(expression.strip())
    if not match:
        return None
    count, unit = int(match.group(1)), match.group(2).rstrip("s")
    if count <= 0:
        raise ValueError(f"rate must be positive: {expression!r}")
    return count * _UNIT_SECONDS[unit]


def _field_values(text: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    def number(token: str) -> int:
        if token.upper() in names:
            value = names[token.upper()]
        elif token.isdigit():
            value = int(token)
        else:
            raise ValueError(f"unsupported cron value {token!r} (L, W and # are not supported)")
        if not low <= value <= high:
            raise ValueError(f"{token} is out of range {low}-{high}")
        return value

    values: set[int] = set()
    for item in text.split(","):
        item = item.strip()
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if base in ("*", "?"):
            start, end = low, high
        elif "-" in base:
            first, last = base.split("-", 1)
            start, end = number(first), number(last)
        else:
            start = number(base)
            end = high if step_text else start
        values.update(range(start, end + 1, step))
    return values


@dataclass(frozen=True)
class Cron:
    minutes: set[int]
    hours: set[int]
    days: set[int]
    months: set[int]
    weekdays: set[int]
    years: set[int]

    @classmethod
    def parse(cls, expression: str) -> Cron | None:
        """A parsed ``cron(...)``, None if it is not one; ValueError if malformed."""
        match = _CRON.match(expression.strip())
        if not match:
            return None
        fields = match.group(1).split()
        if len(fields) != 6:
            raise ValueError(f"cron needs 6 fields, got {len(fields)}: {expression!r}")
        sets = [_field_values(text, low, high, names)
                for text, (low, high, names) in zip(fields, _FIELDS, strict=True)]
        return cls(*sets)

    def matches(self, when: datetime) -> bool:
        weekday = (when.weekday() + 1) % 7 + 1  # AWS: SUN=1 .. SAT=7
        return (when.minute in self.minutes and when.hour in self.hours
                and when.day in self.days and when.month in self.months
                and weekday in self.weekdays and when.year in self.years)


@dataclass
class _RuleClock:
    expression: str
    period: int | None = None       # rate: seconds
    cron: Cron | None = None
    next_due: float = 0.0           # rate: emulated epoch seconds
    last_minute: int = 0            # cron: last emulated minute examined
    broken: bool = False


class Scheduler:
    """The ticker thread. ``fire(rule, event)`` delivers a scheduled event."""

    def __init__(self, fire: Callable[[Any, dict[str, Any]], None], *,
                 time_scale: float = 1.0, tick: float = 0.1) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.fire = fire
        self.time_scale = time_scale
        self.tick_seconds = tick
        self._clocks: dict[str, _RuleClock] = {}
        self._real_origin = time.time()
        self._emulated_origin = self._real_origin
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def now(self) -> float:
        """Emulated epoch seconds."""
        return self._emulated_origin + (time.time() - self._real_origin) * self.time_scale

    def set_time_scale(self, time_scale: float) -> None:
        """Change the speed of the emulated clock from now on (it does not jump)."""
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self._emulated_origin = self.now()
        self._real_origin = time.time()
        self.time_scale = time_scale

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="amiforge-scheduler",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def reset(self) -> None:
        self._clocks.clear()

    def _run(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            try:
                self.tick()
            except Exception:
                log.exception("scheduler tick failed")

    def tick(self) -> None:
        now = self.now()
        seen: set[str] = set()
        for rule in _scheduled_rules():
            seen.add(rule.arn)
            clock = self._clock(rule, now)
            if clock.broken:
                continue
            if self._due(clock, now):
                self.fire(rule, _scheduled_event(rule))
        for arn in set(self._clocks) - seen:
            del self._clocks[arn]

    def _clock(self, rule: Any, now: float) -> _RuleClock:
        clock = self._clocks.get(rule.arn)
        if clock is not None and clock.expression == rule.scheduled_expression:
            return clock
        clock = _RuleClock(rule.scheduled_expression)
        try:
            clock.period = rate_seconds(clock.expression)
            clock.cron = None if clock.period else Cron.parse(clock.expression)
            if clock.period is None and clock.cron is None:
                raise ValueError("not a rate() or cron() expression")
        except ValueError as err:
            log.warning("rule %s: schedule %r will never fire: %s", rule.name,
                        clock.expression, err)
            clock.broken = True
        clock.next_due = now + (clock.period or 0)
        clock.last_minute = int(now // 60)
        self._clocks[rule.arn] = clock
        return clock

    @staticmethod
    def _due(clock: _RuleClock, now: float) -> bool:
        if clock.period:
            if now < clock.next_due:
                return False
            # Coalesce missed periods into one firing; keep the phase.
            missed = int((now - clock.next_due) // clock.period) + 1
            clock.next_due += missed * clock.period
            return True
        assert clock.cron is not None
        current = int(now // 60)
        first = max(clock.last_minute + 1, current - _MAX_MINUTES_PER_TICK)
        clock.last_minute = current
        return any(clock.cron.matches(datetime.fromtimestamp(minute * 60, UTC))
                   for minute in range(first, current + 1))


def _scheduled_rules() -> Iterator[Any]:
    from moto.events.models import events_backends

    for _account, regions in list(events_backends.items()):
        for _region, backend in list(regions.items()):
            for bus in list(backend.event_buses.values()):
                for rule in list(bus.rules.values()):
                    if rule.scheduled_expression and rule.state == "ENABLED":
                        yield rule


def _scheduled_event(rule: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": rule.account_id,
        "time": time.time(),
        "region": rule.region_name,
        "resources": [rule.arn],
        "detail": {},
    }
