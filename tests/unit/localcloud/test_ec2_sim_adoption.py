"""Regression: a builder the simulator's scan adopts before the run_instances hook sees it.

moto creates the instance already ``running``; if the periodic scan picks it up in that
instant, its build starts in the pending phase while the instance says running. That
must not be mistaken for "changed through the API": the builder must still stop.
"""

from __future__ import annotations

import base64
import time
from types import SimpleNamespace

from amiforge.core.userdata import parse_console
from amiforge.localcloud.ec2_sim import BuilderSimulator


class FakeInstance(SimpleNamespace):
    """The few attributes of a moto instance the simulator reads and writes."""

    @property
    def state(self) -> str:
        return self._state.name

    def stop(self) -> None:
        self._state.name = "stopped"


def test_builder_adopted_while_running_still_stops() -> None:
    instance_id = "i-0123456789abcdef0"
    instance = FakeInstance(
        id=instance_id, _state=SimpleNamespace(name="running", code=16),
        user_data=base64.b64encode(b"#!/bin/bash\necho hi\n").decode(),
        instance_initiated_shutdown_behavior="stop",
        ec2_backend=SimpleNamespace(tags={instance_id: {"amiforge:role": "builder",
                                                        "amiforge:recipe": "web"}}))
    events: list[str] = []
    sim = BuilderSimulator(lambda *args: events.append(args[-1]), builder_seconds=0.1,
                           running_after=0.0, stopping_seconds=0.0)
    sim.launched(instance, "123456789012", "us-east-1", already_running=True)
    deadline = time.monotonic() + 5
    while instance.state != "stopped" and time.monotonic() < deadline:
        sim._advance(time.monotonic())
        time.sleep(0.02)
    assert instance.state == "stopped"
    assert events[-1] == "stopped"
    assert parse_console(sim.console(instance_id)).outcome == "success"
