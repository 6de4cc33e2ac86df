"""A schedule's ticks never pile up in one function: while the last tick's invocation
waits or runs, the next is dropped. Once, thousands of tick threads waited for a
function's environments, and the local cloud slowed to a stop."""

from __future__ import annotations

import threading
from typing import Any

from amiforge.localcloud.lambda_runtime import invoke_async
from amiforge.localcloud.testing import wait_for


class SlowFunction:
    function_name = "slow-check"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = 0
        self._lock = threading.Lock()

    def _invoke_lambda(self, event: Any) -> tuple[str, bool, str]:
        with self._lock:
            self.started += 1
        self.release.wait(10)
        return "{}", False, ""


def test_a_tick_while_the_last_one_runs_is_dropped() -> None:
    fn = SlowFunction()
    assert invoke_async(fn, {}, one_at_a_time="rule -> slow-check") is True
    wait_for(lambda: fn.started == 1, timeout=5, what="the first tick to start")

    assert invoke_async(fn, {}, one_at_a_time="rule -> slow-check") is False

    fn.release.set()
    assert wait_for(lambda: invoke_async(fn, {}, one_at_a_time="rule -> slow-check"),
                    timeout=5, what="a tick after the first ended")
    wait_for(lambda: fn.started == 2, timeout=5, what="the next tick to run")


def test_other_rules_and_events_are_never_dropped() -> None:
    fn = SlowFunction()
    try:
        assert invoke_async(fn, {}, one_at_a_time="rule-a -> slow-check") is True
        assert invoke_async(fn, {}, one_at_a_time="rule-b -> slow-check") is True
        assert invoke_async(fn, {}) is True and invoke_async(fn, {}) is True
        wait_for(lambda: fn.started == 4, timeout=5, what="all four invocations")
    finally:
        fn.release.set()


def test_only_scheduled_events_are_delivered_one_at_a_time(monkeypatch: Any) -> None:
    from types import SimpleNamespace

    from amiforge.localcloud import events

    calls: list[str | None] = []
    monkeypatch.setattr(events, "_to_lambda", lambda arn, account, region, body, key=None:
                        calls.append(key))
    rule = SimpleNamespace(arn="arn:aws:events:us-east-1:123456789012:rule/check",
                           name="check", region_name="us-east-1", account_id="123456789012")
    target = {"Id": "fn", "Arn": "arn:aws:lambda:us-east-1:123456789012:function:check"}
    tick = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    stopped = {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification",
               "detail": {"state": "stopped"}}

    events.deliver_to_target(rule, target, tick)
    events.deliver_to_target(rule, target, stopped)

    assert calls == [f"{rule.arn} -> {target['Arn']}", None]
