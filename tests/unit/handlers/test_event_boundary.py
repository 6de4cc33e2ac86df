"""Every pipeline handler checks its event before its step runs.

``step_env`` is replaced by a function that fails the test: a refused event must never
reach the step (which would meet it as a KeyError or TypeError, or iterate a string).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from amiforge.core import events as ev
from amiforge.errors import InvalidEvent
from amiforge.handlers import pipeline, runtime
from amiforge.localcloud.testing import LambdaContext

EVENTS = Path(__file__).parents[2] / "events"
# handler attribute -> its schema; its sample event is tests/events/<handler>.json
SCHEMAS: dict[str, ev.Obj] = {
    "resolve": ev.RESOLVE, "launch": ev.LAUNCH, "create_build_stack": ev.CREATE_BUILD_STACK,
    "await_build_stack": ev.AWAIT_BUILD_STACK, "stop_builder": ev.STOP_BUILDER,
    "await_stop": ev.AWAIT_STOP, "instance_state": ev.INSTANCE_STATE_CHANGE,
    "verify": ev.VERIFY, "create_image": ev.CREATE_IMAGE, "await_image": ev.AWAIT_IMAGE,
    "distribute": ev.DISTRIBUTE, "register": ev.REGISTER, "finish": ev.FINISH,
    "record_failure": ev.RECORD_FAILURE, "detect": ev.DETECT, "prune": ev.PRUNE,
    "sweep": ev.SWEEP, "launch_tester": ev.LAUNCH_TESTER, "verify_test": ev.VERIFY_TEST,
    "image_state": ev.IMAGE_STATE_CHANGE, "await_refresh": ev.AWAIT_REFRESH}
HANDLERS = {name: name for name in SCHEMAS}


@pytest.fixture(autouse=True)
def step_never_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def reached() -> Any:
        raise AssertionError("the step ran with an event its schema should have refused")
    monkeypatch.setattr(runtime, "step_env", reached)


def call(handler: str, event: Any) -> Any:
    return getattr(pipeline, handler)(event, LambdaContext())


@pytest.mark.parametrize("handler", sorted(HANDLERS))
@pytest.mark.parametrize("event", [
    None, [], "web", 7,
    # every key some handler reads, each of the wrong type
    {key: 5 for key in ("build", "input", "build_id", "launch", "stack", "token", "image",
                        "timing", "detail", "error", "recipes", "dry_run", "check", "test")},
])
def test_malformed_events_are_refused_by_every_handler(handler: str, event: Any) -> None:
    with pytest.raises(InvalidEvent, match=r" event refused: (the event|\S+) (must be|is missing)"):
        call(handler, event)


@pytest.mark.parametrize("handler", sorted(HANDLERS))
def test_a_sample_event_with_a_bad_field_is_refused_naming_it(handler: str) -> None:
    event = json.loads((EVENTS / f"{HANDLERS[handler]}.json").read_text())
    field = sorted(SCHEMAS[handler].required or set(SCHEMAS[handler].fields) & set(event))[0]
    if handler == "instance_state":
        event["detail"]["instance-id"] = "../../etc"
        field = "detail.instance-id"
    elif handler == "image_state":
        event["detail"]["ImageId"] = "../../etc"
        field = "detail.ImageId"
    else:
        event[field] = ["not", "this"] if not isinstance(event[field], list) else "x"
    with pytest.raises(InvalidEvent, match=f"{field} must be"):
        call(handler, event)


@pytest.mark.parametrize("handler", ["detect", "prune"])
def test_detect_and_prune_refuse_recipes_as_a_string(handler: str) -> None:
    with pytest.raises(InvalidEvent, match="recipes must be a list of recipe names, got 'web'"):
        call(handler, {"recipes": "web"})


def test_the_test_phase_refuses_a_tester_that_is_not_an_instance_id() -> None:
    event = json.loads((EVENTS / "verify_test.json").read_text())
    event["test"]["instance_id"] = "i-*"
    with pytest.raises(InvalidEvent, match="test.instance_id must be an instance id"):
        call("verify_test", event)
    event = json.loads((EVENTS / "await_stop.json").read_text())
    event["role"] = "root"
    with pytest.raises(InvalidEvent, match="role must be"):
        call("await_stop", event)


def test_a_good_event_reaches_the_step(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    handler = runtime.lambda_handler(lambda event, env: seen.append(event) or {"ok": True},
                                     pipeline.ev.DETECT)
    monkeypatch.setattr(runtime, "step_env", lambda: None)
    assert handler({"recipes": ["web"], "trigger": "publish"}, LambdaContext()) == {"ok": True}
    assert seen == [{"recipes": ["web"], "trigger": "publish"}]
