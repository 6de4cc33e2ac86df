"""The build state machine is written once per idea: state_machine.yaml's policy table,
assembled into the deployed template by amiforge.deploy.machine."""

from __future__ import annotations

import copy
import importlib
import json
from pathlib import Path

import pytest
from cfnlint.decode.cfn_yaml import loads

from amiforge.deploy import machine
from amiforge.deploy.stack import template_text

DEPLOY = Path(importlib.import_module("amiforge.deploy").__file__).parent

# The shared policies every Task gets...
SHARED = {"Retry": ["Transient"], "Catch": ["RecordFailure"]}
# ... and the Tasks that, on purpose, use others (in this order). A Task not listed here
# with any other Retry or Catch fails the test below: add it here with the reason.
EXCEPTIONS: dict[str, dict[str, list[str]]] = {
    # No $.build yet: ResolveFailed makes one from the execution's input.
    "Resolve": {"Catch": ["ResolveFailed"]},
    # Both start a builder: first wait for a slot of the launch budget.
    "CreateBuildStack": {"Retry": ["LaunchThrottled", "Transient"]},
    "Launch": {"Retry": ["LaunchThrottled", "Transient"]},
    # A builder that never stops is a failed attempt, not a failed build.
    "AwaitStop": {"Catch": ["TimedOutAttempt", "RecordFailure"]},
    # An image or copy still pending after ImageTimeoutMinutes: ImageTimedOut names it.
    "AwaitImage": {"Catch": ["ImageTimeout", "RecordFailure"]},
    "AwaitCopies": {"Catch": ["ImageTimeout", "RecordFailure"]},
    # Nobody answered the approval gate in time: ApprovalTimedOut names the reason.
    "AwaitApproval": {"Catch": ["ApprovalTimeout", "RecordFailure"]},
    # EC2 publishes console output late; a stopped builder with no marker is a failed attempt.
    "Verify": {"Retry": ["ConsoleNotReady", "Transient"],
               "Catch": ["NoMarkerAttempt", "RecordFailure"]},
    # The test phase: the tester is launched like a builder (the launch budget)...
    "LaunchTester": {"Retry": ["LaunchThrottled", "Transient"]},
    # ... a tester that never stops has failed its test (TestNotPassed records why) ...
    "AwaitTest": {"Catch": ["TestTimedOut", "RecordFailure"]},
    # ... and its console is read like a builder's; no marker after the retries: failed.
    "VerifyTest": {"Retry": ["ConsoleNotReady", "Transient"],
                   "Catch": ["TestNoMarker", "RecordFailure"]},
    # The image is registered: retry anything, then leave the rest to the cleanup queue.
    "Finish": {"Retry": ["Anything"], "Catch": ["CleanupLeftToQueue"]},
    # The rollout: a failure rolls the release back (never RecordFailure: the image is
    # released and stays, REVOKED); the rollback retries anything, then says it could not.
    "RollOut": {"Catch": ["RolloutFailedCatch"]},
    # ... a refresh still running past the refresh timeout is rolled back by amiforge.
    "AwaitRefresh": {"Catch": ["RefreshTimeout", "RolloutFailedCatch"]},
    "RefreshTimedOut": {"Catch": ["RolloutFailedCatch"]},
    "RollBackRelease": {"Retry": ["Anything"], "Catch": ["RollbackUnfinished"]},
    # The failure path itself: never retry a refused event, retry anything else.
    "RecordFailure": {"Retry": ["NeverInvalidEvent", "Anything"], "Catch": ["Unrecorded"]},
}
# Where each Task's catchers go, in order: the routes of the hand-written definition.
ROUTES = {"Resolve": ["ResolveFailed"], "AwaitStop": ["AttemptFailed", "RecordFailure"],
          "Verify": ["AttemptFailed", "RecordFailure"], "Finish": ["RollsOut?"],
          "RollOut": ["RollBackRelease"], "AwaitRefresh": ["RefreshTimedOut", "RollBackRelease"],
          "RefreshTimedOut": ["RollBackRelease"],
          "RollBackRelease": ["RollbackNotFinished"],
          "AwaitApproval": ["ApprovalTimedOut", "RecordFailure"],
          "AwaitImage": ["ImageTimedOut", "RecordFailure"],
          "AwaitCopies": ["ImageTimedOut", "RecordFailure"],
          "AwaitTest": ["TestNotPassed", "RecordFailure"],
          "VerifyTest": ["TestNotPassed", "RecordFailure"],
          "RecordFailure": ["FailedUnrecorded"]}
PIPELINE = ["Resolve", "CreateBuildStack", "AwaitBuildStack", "StopBuilder", "Launch",
            "AwaitStop", "Verify", "AttemptFailed", "CreateImage", "AwaitImage", "LaunchTester",
            "AwaitTest", "VerifyTest", "TestNotPassed", "AwaitApproval", "Distribute",
            "AwaitCopies", "Register", "RollOut", "AwaitRefresh", "RefreshTimedOut"]
BACKOFF = {"IntervalSeconds": 2, "MaxAttempts": 6, "BackoffRate": 2, "MaxDelaySeconds": 60,
           "JitterStrategy": "FULL"}


@pytest.fixture(scope="module")
def deployed() -> dict:
    """The definition CloudFormation gets (`${...}` sit inside JSON strings)."""
    sub = loads(template_text())["Resources"]["BuildStateMachine"]["Properties"][
        "DefinitionString"]["Fn::Sub"]
    return json.loads(sub)


@pytest.fixture(scope="module")
def policies() -> dict:
    return machine.source()["Policies"]


def tasks(definition: dict) -> dict[str, dict]:
    return {n: s for n, s in definition["States"].items() if s["Type"] == "Task"}


def expanded(policies: dict, field: str, names: list[str]) -> list[dict]:
    return [policies[field][name] for name in names]


def test_the_deployed_definition_is_the_assembled_source(deployed: dict) -> None:
    assert deployed == machine.assemble()
    assert json.loads(machine.definition_text()) == deployed


def test_every_task_has_the_shared_policies_or_is_a_listed_exception(
        deployed: dict, policies: dict) -> None:
    found = tasks(deployed)
    assert set(EXCEPTIONS) <= set(found)
    for name, state in found.items():
        for field in ("Retry", "Catch"):
            names = EXCEPTIONS.get(name, {}).get(field, SHARED[field])
            assert state[field] == expanded(policies, field, names), (name, field)


def test_every_lambda_task_from_resolve_to_register_retries_transient_errors_alike(
        deployed: dict, policies: dict) -> None:
    found = tasks(deployed)
    assert set(PIPELINE) == set(found) - {"Finish", "RecordFailure", "RollBackRelease"}
    for name in PIPELINE:
        assert found[name]["Retry"][-1] == policies["Retry"]["Transient"], name
    transient = policies["Retry"]["Transient"]
    assert {k: v for k, v in transient.items() if k != "ErrorEquals"} == BACKOFF
    assert set(transient["ErrorEquals"]) >= {"TransientAwsError", "Runtime.ExitError",
                                             "Sandbox.Timedout", "Lambda.Unknown"}
    # Finish and RecordFailure retry anything, with the same backoff.
    assert policies["Retry"]["Anything"] == {"ErrorEquals": ["States.ALL"], **BACKOFF}


def test_every_catch_routes_where_it_did(deployed: dict) -> None:
    for name, state in tasks(deployed).items():
        routes = [c["Next"] for c in state["Catch"]]
        assert routes == ROUTES.get(name, ["RecordFailure"]), name
        assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name


def test_each_policy_is_written_once_and_used(deployed: dict, policies: dict) -> None:
    for field in ("Retry", "Catch"):
        table = policies[field]
        values = [json.dumps(v, sort_keys=True) for v in table.values()]
        assert len(set(values)) == len(values), f"two {field} policies are the same"
        used = {json.dumps(p, sort_keys=True)
                for s in deployed["States"].values() for p in s.get(field, [])}
        assert used == set(values), f"a {field} policy no state uses"
    # Nothing else in the package writes a retrier or a catcher.
    assert "ErrorEquals" not in (DEPLOY / "template.yaml").read_text()


@pytest.mark.parametrize("field, entry", [
    ("Retry", {"ErrorEquals": ["States.ALL"], "MaxAttempts": 3}),
    ("Catch", {"ErrorEquals": ["States.ALL"], "Next": "RecordFailure"}),
])
def test_an_inline_policy_is_refused(field: str, entry: dict) -> None:
    source = copy.deepcopy(machine.source())
    source["Definition"]["States"]["CreateImage"][field] = ["Transient" if field == "Retry"
                                                            else "RecordFailure", entry]
    with pytest.raises(machine.MachineSourceError, match=f"CreateImage's {field} writes"):
        machine.assemble(source)


def test_an_unknown_policy_or_target_is_refused() -> None:
    source = copy.deepcopy(machine.source())
    source["Definition"]["States"]["CreateImage"]["Retry"] = ["Transiant"]
    with pytest.raises(machine.MachineSourceError, match="'Transiant', which is not"):
        machine.assemble(source)
    source = copy.deepcopy(machine.source())
    del source["Definition"]["States"]["ResolveFailed"]
    with pytest.raises(machine.MachineSourceError, match="'ResolveFailed', which is not a"):
        machine.assemble(source)


def test_a_task_naming_no_policy_gets_the_defaults_and_other_states_none() -> None:
    assembled = machine.assemble()["States"]
    source = machine.source()["Definition"]["States"]
    assert "Retry" not in source["CreateImage"] and "Catch" not in source["CreateImage"]
    assert [r["ErrorEquals"][0] for r in assembled["CreateImage"]["Retry"]] == [
        "TransientAwsError"]
    for name, state in assembled.items():
        if state["Type"] != "Task":
            assert "Retry" not in state and "Catch" not in state, name


def test_the_template_holds_the_marker_once() -> None:
    raw = (DEPLOY / "template.yaml").read_text()
    assert raw.count(machine.MARKER) == 1
    assert machine.MARKER not in template_text()
    with pytest.raises(machine.MachineSourceError, match="exactly once"):
        machine.inline(raw.replace(machine.MARKER, "DefinitionString: '{}'"))


def choose(choice: dict, state: dict) -> str:
    """The Next of a Choice state for ``state``: enough of the ASL rules this machine uses
    (IsPresent, StringEquals, BooleanEquals on ``$.a.b`` paths) to follow its routes."""
    def value(path: str) -> object:
        current: object = state
        for part in path.removeprefix("$.").split("."):
            if not isinstance(current, dict) or part not in current:
                return KeyError
            current = current[part]
        return current

    def holds(rule: dict) -> bool:
        if "And" in rule:
            return all(holds(r) for r in rule["And"])
        found = value(rule["Variable"])
        if "IsPresent" in rule:
            return (found is not KeyError) == rule["IsPresent"]
        if "BooleanEquals" in rule:
            return found is rule["BooleanEquals"]
        return found == rule["StringEquals"]

    return next((c["Next"] for c in choice["Choices"] if holds(c)), choice["Default"])


BUILD = {"recipe": "web", "build_id": "web-1", "builder": "instance"}
IMAGE = {"image_id": "ami-0123456789abcdef0", "name": "web-1", "polls": 0}


@pytest.mark.parametrize("stopped, builder, route", [
    # The stop event's invocation judged the builder and made the image.
    ({"state": "stopped", "source": "event", "verdict": "success", "image": IMAGE},
     "instance", "ImageCreated"),
    # Judged, but CreateImage failed there: the CreateImage state retries it.
    ({"state": "stopped", "source": "event", "verdict": "success",
      "image_error": {"Error": "TransientAwsError", "Cause": "throttled"}},
     "instance", "CreateImage"),
    # Resumed without a verdict (stop check, no marker yet, a failure marker): Verify.
    ({"state": "stopped", "source": "schedule"}, "instance", "Verify"),
    ({"state": "stopped", "source": "event"}, "instance", "Verify"),
    ({"state": "terminated", "source": "poll"}, "instance", "Verify"),
    # A CloudFormation builder's verdict was CREATE_COMPLETE.
    ({"state": "stopped", "source": "schedule"}, "cloudformation", "CreateImage"),
    ({"state": "stopped", "source": "event", "verdict": "success", "image": IMAGE},
     "cloudformation", "ImageCreated"),
])
def test_a_stopped_builder_goes_where_its_verdict_says(deployed: dict, stopped: dict,
                                                       builder: str, route: str) -> None:
    state = {"build": {**BUILD, "builder": builder}, "stopped": stopped}
    assert choose(deployed["States"]["Verified?"], state) == route


def test_an_image_made_at_the_stop_event_is_what_create_image_would_have_output(
        deployed: dict) -> None:
    states = deployed["States"]
    made = states["ImageCreated"]
    assert made == {"Type": "Pass", "InputPath": "$.stopped.image", "ResultPath": "$.image",
                    "Next": "AwaitImage"}
    assert states["CreateImage"]["ResultPath"] == "$.image"
    assert states["CreateImage"]["Next"] == "AwaitImage"
    # AwaitStop hands the stop event's invocation what Verify and CreateImage read.
    payload = states["AwaitStop"]["Parameters"]["Payload"]
    assert payload["build.$"] == "$.build" and payload["launch.$"] == "$.launch"
    assert states["AwaitStop"]["Next"] == "Verified?"
    # The test phase's wait passes no build: a tester's stop only resumes it.
    assert "build.$" not in states["AwaitTest"]["Parameters"]["Payload"]


@pytest.mark.parametrize("build, route", [
    ({"tests": False}, "Approval?"),
    ({"tests": True}, "LaunchTester"),
    # An execution Resolve started before it set the flag: LaunchTester reads the recipe.
    ({}, "LaunchTester"),
])
def test_a_recipe_without_a_test_invokes_no_launch_tester(deployed: dict, build: dict,
                                                          route: str) -> None:
    states = deployed["States"]
    assert states["AwaitImage"]["Next"] == "Test?"
    assert choose(states["Test?"], {"build": {**BUILD, **build}}) == route


@pytest.mark.parametrize("build, route", [
    ({"copies": False}, "Register"),
    ({"copies": True}, "Distribute"),
    ({}, "Distribute"),
])
def test_a_recipe_without_copies_invokes_no_distribute(deployed: dict, build: dict,
                                                       route: str) -> None:
    states = deployed["States"]
    # Every way past the test phase and the approval gate goes through Copies?.
    assert states["Approval?"]["Default"] == "Copies?"
    assert states["AwaitApproval"]["Next"] == "Copies?"
    assert choose(states["Copies?"], {"build": {**BUILD, **build}}) == route
    # Skipping Distribute leaves $.distribution unset: Register then registers the home
    # image alone, which is all Distribute answered without another region.
    assert states["Distribute"]["ResultPath"] == "$.distribution"


def test_the_test_phase_and_the_gate_lead_on_to_copies(deployed: dict) -> None:
    states = deployed["States"]
    assert states["Tested?"]["Default"] == "Approval?"
    assert states["VerifyTest"]["Next"] == "Approval?"
    assert states["TestNotPassed"]["Next"] == "Approval?"
    targets = {name for name, state in states.items()
               if state.get("Next") == "Distribute" or state.get("Default") == "Distribute"
               or any(c.get("Next") == "Distribute" for c in state.get("Choices", []))}
    assert targets == {"Copies?"}


@pytest.mark.parametrize("state, route", [
    # Resolve launched the first builder itself (steps/resolve.py).
    ({"launch": {"instance_id": "i-0123456789abcdef0", "attempt": 1}}, "AwaitStop"),
    # Its launch failed (only logged): the Launch state runs it with its Retry and Catch.
    ({}, "Launch"),
    ({"build": {**BUILD, "builder": "cloudformation"}}, "CreateBuildStack"),
])
def test_a_builder_resolve_launched_goes_straight_to_await_stop(deployed: dict, state: dict,
                                                                route: str) -> None:
    states = deployed["States"]
    assert states["Resolve"]["Next"] == "Builder?"
    assert states["Resolve"]["ResultPath"] == "$"
    assert choose(states["Builder?"], {"build": BUILD, **state}) == route


@pytest.mark.parametrize("result, route", [
    # Register cleaned up in its own invocation (steps/register.py).
    ({"status": "AVAILABLE", "cleanup": {"status": "AVAILABLE"}}, "RollsOut?"),
    # A build with copies, or a cleanup that failed there: the Finish state runs it.
    ({"status": "AVAILABLE"}, "Finish"),
])
def test_a_build_register_cleaned_up_skips_finish(deployed: dict, result: dict,
                                                  route: str) -> None:
    states = deployed["States"]
    assert states["Register"]["Next"] == "Finished?"
    assert states["Finish"]["Next"] == "RollsOut?"
    assert choose(states["Finished?"], {"build": BUILD, "result": result}) == route
