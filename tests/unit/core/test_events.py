"""Event schemas: every sample event fits; every field the steps read is checked by name."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amiforge.core import events as ev
from amiforge.errors import InvalidEvent, InvalidInput

EVENTS = Path(__file__).parents[2] / "events"
SCHEMAS: dict[str, ev.Obj] = {
    "resolve": ev.RESOLVE, "launch": ev.LAUNCH, "create_build_stack": ev.CREATE_BUILD_STACK,
    "await_build_stack": ev.AWAIT_BUILD_STACK, "stop_builder": ev.STOP_BUILDER,
    "await_stop": ev.AWAIT_STOP, "await_approval": ev.AWAIT_APPROVAL, "instance_state": ev.INSTANCE_STATE_CHANGE,
    "stop_check": ev.STOP_CHECK, "verify": ev.VERIFY, "create_image": ev.CREATE_IMAGE,
    "await_image": ev.AWAIT_IMAGE, "await_copies": ev.AWAIT_IMAGE,
    "image_state": ev.IMAGE_STATE_CHANGE, "image_check": ev.IMAGE_CHECK,
    "distribute": ev.DISTRIBUTE, "register": ev.REGISTER,
    "finish": ev.FINISH, "record_failure": ev.RECORD_FAILURE, "detect": ev.DETECT,
    "prune": ev.PRUNE, "sweep": ev.SWEEP, "launch_tester": ev.LAUNCH_TESTER,
    "verify_test": ev.VERIFY_TEST, "await_refresh": ev.AWAIT_REFRESH,
    "refresh_state": ev.REFRESH_STATE_CHANGE, "refresh_check": ev.REFRESH_CHECK,
    "refresh_timed_out": ev.REFRESH_TIMED_OUT,
}


def sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def test_every_sample_event_file_has_a_schema() -> None:
    assert {p.stem for p in EVENTS.glob("*.json")} == set(SCHEMAS)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_the_sample_event_fits_its_schema(name: str) -> None:
    ev.check(sample(name), SCHEMAS[name], name)


def declared(schema: ev.Obj, value: Any, path: str = "") -> Iterator[tuple[str, bool, Any]]:
    """(dotted path, required, spec) of every field the schema checks that the sample has."""
    for key, spec in schema.fields.items():
        if not isinstance(value, dict) or key not in value:
            continue
        where = f"{path}.{key}" if path else key
        yield where, key in schema.required, spec
        if isinstance(spec, ev.Obj):
            yield from declared(spec, value[key], where)


def mutated(event: dict[str, Any], path: str, new: Any) -> dict[str, Any]:
    out = copy.deepcopy(event)
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node[key]
    if new is KeyError:
        del node[last]
    else:
        node[last] = new
    return out


CASES = [(name, path, required, spec) for name in sorted(SCHEMAS)
         for path, required, spec in declared(SCHEMAS[name], sample(name))]


@pytest.mark.parametrize(("name", "path", "required", "spec"), CASES,
                         ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_each_field_is_checked_and_named(name: str, path: str, required: bool,
                                         spec: ev.Spec) -> None:
    event = sample(name)
    wrong = "text" if isinstance(spec, (ev.Obj, ev.List, ev.Int, ev.Bool)) else 12
    with pytest.raises(InvalidEvent) as caught:
        ev.check(mutated(event, path, wrong), SCHEMAS[name], name)
    assert f"{path} must be" in str(caught.value)
    assert str(caught.value).startswith(f"{name} event refused: ")
    if required:
        with pytest.raises(InvalidEvent, match=f": {path} is missing"):
            ev.check(mutated(event, path, KeyError), SCHEMAS[name], name)
    else:
        ev.check(mutated(event, path, KeyError), SCHEMAS[name], name)


@pytest.mark.parametrize("schema", [ev.DETECT, ev.PRUNE])
def test_recipes_as_a_string_is_refused_not_iterated(schema: ev.Obj) -> None:
    with pytest.raises(InvalidEvent, match=r"recipes must be a list of recipe names, got 'web'"):
        ev.check({"recipes": "web"}, schema, "detect")
    with pytest.raises(InvalidEvent, match=r"recipes\[1\] must be a recipe name"):
        ev.check({"recipes": ["web", "../etc"]}, schema, "detect")
    ev.check({"recipes": ["web", "db"]}, schema, "detect")
    ev.check({"recipes": None}, schema, "detect")


@pytest.mark.parametrize("event", [None, [], "web", 3, True])
def test_an_event_that_is_not_a_map_is_refused(event: Any) -> None:
    with pytest.raises(InvalidEvent, match="the event must be a map"):
        ev.check(event, ev.DETECT, "detect")


def test_values_are_checked_not_only_types() -> None:
    event = sample("launch")
    for path, value, says in [("build.base_ami", "ami-XYZ; rm", "an AMI id"),
                              ("build.recipe", "Web", "a recipe name"),
                              ("build.regions", ["eu-west-1", "x"], "a region"),
                              ("build.root_volume_gb", -1, "at least 1")]:
        with pytest.raises(InvalidEvent, match=says):
            ev.check(mutated(event, path, value), ev.LAUNCH, "launch")
    with pytest.raises(InvalidEvent, match="check must be one of waiting"):
        ev.check_instance_state({"check": "everything"})
    with pytest.raises(InvalidEvent, match="detail.instance-id is missing"):
        ev.check_instance_state({"detail": {"state": "stopped"}})


def test_invalid_event_is_invalid_input() -> None:
    assert issubclass(InvalidEvent, InvalidInput)


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=5), max_leaves=20)


@given(st.sampled_from(sorted(SCHEMAS)), JSON)
@settings(max_examples=300, deadline=None)
def test_any_json_is_accepted_or_refused_with_invalid_event(name: str, event: Any) -> None:
    try:
        ev.check(event, SCHEMAS[name], name)
    except InvalidEvent as err:
        assert str(err).startswith(f"{name} event refused: ")


def test_the_state_machines_other_shapes_fit_their_schemas() -> None:
    # ResolveFailed (a Pass state) hands RecordFailure a build made from the input, and a
    # rebuild's execution name carries a generation suffix.
    rebuild = "web-5f1e2d3c4b5a69788796-g2"
    ev.check({"build": {"recipe": "web", "build_id": rebuild, "regions": [],
                        "start": {"recipe": "web", "base_ami": "ami-0123456789abcdef0"}},
              "error": {"Error": "InvalidInput", "Cause": "{}"}},
             ev.RECORD_FAILURE, "record_failure")
    # AttemptFailed runs Verify's function with the error a failed attempt was caught with.
    verify = sample("verify")
    ev.check({"failed_attempt": {"Error": "States.Timeout", "Cause": ""},
              "build": {**verify["build"], "build_id": rebuild}, "launch": verify["launch"]},
             ev.VERIFY, "verify")


def test_a_unicode_digit_is_no_number() -> None:
    event = sample("await_build_stack")
    event["stack"]["polls"] = "²"  # str.isdigit() says yes; int() does not
    with pytest.raises(InvalidEvent, match="polls"):
        ev.check(event, ev.AWAIT_BUILD_STACK, "await_build_stack")


@pytest.mark.parametrize(("images", "message"), [
    ({"../etc": "ami-0fedcba9876543210"}, "distribution.images key must be a region"),
    ({"eu-west-1": "ami-; rm -rf"}, "distribution.images.eu-west-1 must be an AMI id"),
    (["eu-west-1"], "distribution.images must be a map of regions to image ids"),
])
def test_the_copies_map_is_checked_key_and_value(images: Any, message: str) -> None:
    event = sample("await_copies")
    event["distribution"]["images"] = images
    with pytest.raises(InvalidEvent, match=message):
        ev.check(event, ev.AWAIT_IMAGE, "await_image")


def test_the_image_state_function_picks_the_schema_by_shape() -> None:
    ev.check_image_state(sample("image_state"))
    ev.check_image_state(sample("image_check"))
    with pytest.raises(InvalidEvent, match="image-state \\(image check\\) event refused: "
                                           "check must be one of images"):
        ev.check_image_state({"check": "waiting"})
    forged = sample("image_state")
    forged["detail"]["ImageId"] = "ami-../../x"
    with pytest.raises(InvalidEvent, match="detail.ImageId must be an AMI id"):
        ev.check_image_state(forged)


def test_the_await_refresh_function_picks_the_schema_by_shape() -> None:
    for name in ("await_refresh", "refresh_state", "refresh_check", "refresh_timed_out"):
        ev.check_refresh_wait(sample(name))
    with pytest.raises(InvalidEvent, match="await-refresh \\(refresh check\\) event refused: "
                                           "check must be one of refreshes"):
        ev.check_refresh_wait({"check": "images"})
    forged = sample("refresh_state")
    forged["region"] = "../x"
    with pytest.raises(InvalidEvent, match="region must be a region"):
        ev.check_refresh_wait(forged)
    parked = sample("await_refresh")
    parked["rollout"]["refreshes"][0]["outcome"] = "maybe"
    with pytest.raises(InvalidEvent, match="outcome must be one of"):
        ev.check_refresh_wait(parked)
