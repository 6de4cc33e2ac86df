"""The stack template: lint-clean, its state machine wired as designed, handlers real."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.decode.cfn_yaml import loads

from amiforge.deploy.stack import template_text

TEMPLATE = Path(importlib.import_module("amiforge.deploy").__file__).parent / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict:
    return loads(template_text())


def asl(template: dict) -> dict:
    sub = template["Resources"]["BuildStateMachine"]["Properties"]["DefinitionString"]["Fn::Sub"]
    text = sub if isinstance(sub, str) else sub[0]
    return json.loads(re.sub(r"\$\{([A-Za-z:.]+)\}", lambda m: f"arn-of-{m.group(1)}", text))


@pytest.mark.parametrize("which", ["deployed", "source"])
def test_cfn_lint_reports_nothing(which: str, tmp_path: Path) -> None:
    # The deployed template (the state machine assembled into it) is what CloudFormation
    # reads; template.yaml as written must lint clean too, for whoever opens it.
    path = TEMPLATE
    if which == "deployed":
        path = tmp_path / "template.yaml"
        path.write_text(template_text())
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_exports_the_latest_ami_service_token(template: dict) -> None:
    output = template["Outputs"]["LatestAmiServiceToken"]
    assert output["Export"]["Name"] == {"Fn::Sub": "${AWS::StackName}-LatestAmiServiceToken"}


def test_every_task_after_resolve_catches_into_record_failure(template: dict) -> None:
    states = asl(template)["States"]
    tasks = {n: s for n, s in states.items() if s["Type"] == "Task"}
    assert set(tasks) >= {"Resolve", "Launch", "AwaitStop", "Verify", "CreateImage",
                          "AwaitImage", "Register", "Finish", "RecordFailure"}
    for name in ("Resolve", "Launch", "AwaitStop", "Verify", "AttemptFailed", "CreateImage",
                 "AwaitImage", "Distribute", "Register"):
        catches = tasks[name]["Catch"]
        assert catches[-1]["ErrorEquals"] == ["States.ALL"]
        # Resolve's failure has no $.build yet: a Pass state makes one from the input.
        target = catches[-1]["Next"]
        if name == "Resolve":
            assert states[target]["Type"] == "Pass"
            assert states[target]["Parameters"]["build"]["build_id.$"] == "$$.Execution.Name"
            target = states[target]["Next"]
        assert target == "RecordFailure", name
        retried = {e for r in tasks[name]["Retry"] for e in r["ErrorEquals"]}
        assert "TransientAwsError" in retried, name
    # A registered image must never reach the failure path (which deregisters).
    assert all(c["Next"] != "RecordFailure" for c in tasks["Finish"]["Catch"])


def test_await_stop_waits_for_a_task_token_with_the_recipe_timeout(template: dict) -> None:
    state = asl(template)["States"]["AwaitStop"]
    assert state["Resource"].endswith(":states:::lambda:invoke.waitForTaskToken")
    assert state["Parameters"]["Payload"]["token.$"] == "$$.Task.Token"
    assert state["TimeoutSecondsPath"] == "$.timing.timeout_seconds"


def test_verify_relaunches_through_launch(template: dict) -> None:
    choice = asl(template)["States"]["Relaunch?"]
    assert choice["Choices"][0] == {"Variable": "$.verdict.outcome", "StringEquals": "retry",
                                    "Next": "Launch"}


def test_every_failed_attempt_goes_through_attempt_failed_to_the_relaunch_choice(
        template: dict) -> None:
    # A builder that never stops (the task's timeout) and one that stopped without a
    # marker (Verify's ConsoleNotReady, once its retries ran out) are failed attempts,
    # counted against retries like a failure marker; anything else fails the build.
    states = asl(template)["States"]
    for name, error in (("AwaitStop", "States.Timeout"), ("Verify", "ConsoleNotReady")):
        first, last = states[name]["Catch"][0], states[name]["Catch"][-1]
        assert first == {"ErrorEquals": [error], "ResultPath": "$.attempt_error",
                         "Next": "AttemptFailed"}, name
        assert last["ErrorEquals"] == ["States.ALL"], name
    attempt = states["AttemptFailed"]
    assert attempt["Resource"] == "arn-of-VerifyFunction.Arn"
    assert attempt["Parameters"] == {"failed_attempt.$": "$.attempt_error",
                                     "build.$": "$.build", "launch.$": "$.launch"}
    assert (attempt["ResultPath"], attempt["Next"]) == ("$.verdict", "Relaunch?")
    assert states["Verify"]["Next"] == "Relaunch?"


def test_every_function_handler_exists(template: dict) -> None:
    functions = [r for r in template["Resources"].values()
                 if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) >= 12
    for function in functions:
        module, _, attribute = function["Properties"]["Handler"].rpartition(".")
        assert callable(getattr(importlib.import_module(module), attribute)), module


def test_every_function_has_its_own_role_and_log_group(template: dict) -> None:
    resources = template["Resources"]
    functions = {k: r for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    roles = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions.values()]
    assert len(set(roles)) == len(roles)
    for name in functions:
        group = resources[name.replace("Function", "LogGroup")]
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_data_is_encrypted_and_retained(template: dict) -> None:
    resources = template["Resources"]
    for table in ("CatalogTable", "RecipesTable"):
        assert resources[table]["Properties"]["SSESpecification"] == {"SSEEnabled": True}
        assert resources[table]["DeletionPolicy"] == "Retain"
    for queue in ("CleanupQueue", "CleanupDeadLetterQueue"):
        assert resources[queue]["Properties"]["SqsManagedSseEnabled"] is True
    assert resources["CleanupQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 3


def _walk(node: object) -> list[object]:
    found = [node]
    if isinstance(node, dict):
        for value in node.values():
            found += _walk(value)
    elif isinstance(node, list):
        for value in node:
            found += _walk(value)
    return found


@pytest.mark.parametrize("table", ["CatalogTable", "RecipesTable"])
def test_a_retained_table_is_reattached_everywhere_the_stack_names_it(
        template: dict, table: str) -> None:
    resources = template["Resources"]
    condition = f"Create{table}"
    assert resources[table]["Condition"] == condition
    assert resources[table]["UpdateReplacePolicy"] == "Retain"
    assert template["Conditions"][condition] == {
        "Fn::Equals": [{"Ref": f"Retained{table}"}, ""]}
    assert template["Parameters"][f"Retained{table}"]["Default"] == ""
    tags = {t["Key"]: t["Value"] for t in resources[table]["Properties"]["Tags"]}
    assert tags["amiforge:stack"] == {"Ref": "AWS::StackName"}
    # Every reference to the table outside its own definition chooses between the created
    # table and the retained one, and both branches name the same kind of thing.
    arn = ("arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/"
           f"${{Retained{table}}}")
    uses = 0
    for name, resource in {**resources, **{f"Output.{k}": v
                                            for k, v in template["Outputs"].items()}}.items():
        if name == table:
            continue
        for node in _walk(resource):
            if not isinstance(node, dict):
                continue
            ref_or_att = node.get("Ref") == table or (
                "Fn::GetAtt" in node and node["Fn::GetAtt"][0] == table) or (
                isinstance(node.get("Fn::Sub"), str) and f"${{{table}." in node["Fn::Sub"])
            if "Fn::If" in node and node["Fn::If"][0] == condition:
                uses += 1
                created, retained = node["Fn::If"][1], node["Fn::If"][2]
                if created == {"Ref": table}:
                    assert retained == {"Ref": f"Retained{table}"}
                elif created == {"Fn::GetAtt": [table, "Arn"]}:
                    assert retained == {"Fn::Sub": arn}
                else:
                    suffix = created["Fn::Sub"].split("}", 1)[1]
                    assert retained == {"Fn::Sub": arn + suffix}, name
            elif ref_or_att:
                parents = [n for n in _walk(resource) if isinstance(n, dict) and "Fn::If" in n
                           and node in n["Fn::If"][1:]]
                assert parents, f"{name} names {table} outside an !If [{condition}, ...]"
    assert uses > 10
