"""``amiforge build RECIPE`` (ops/builds.py start_build): start first, claim second, as
detection does, and a report that says what happened to an execution someone else
started."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from amiforge.core.hashing import build_key
from amiforge.core.model import Recipe
from amiforge.errors import AmiforgeError
from amiforge.ops import builds

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:amiforge-build"
BASE_AMI = "ami-0123456789abcdef0"


class Cloud:
    """The recipe store, the catalog and Step Functions, with one log of the calls made."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.calls: list[tuple[str, str]] = []
        self.record: dict[str, Any] = {"name": "web", "document": document}
        self.records: list[dict[str, Any]] = []          # the catalog's builds of the key
        self.executions: dict[str, dict[str, Any]] = {}  # name -> {status, input}
        self.start_error: str | None = None

    # recipe store
    def current(self, name: str) -> dict[str, Any] | None:
        return self.record if name == "web" else None

    def claim(self, name: str, key: str, *, build_id: str, base_ami: str,
              recipe_hash: str) -> bool:
        self.calls.append(("claim", key))
        if self.record.get("last_build_key") == key:
            return False
        self.record.update(last_build_key=key, last_build_id=build_id)
        return True

    # catalog
    def find_key(self, name: str, key: str) -> list[dict[str, Any]]:
        return list(self.records)

    # Step Functions
    def start_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict:
        self.calls.append(("start", name))
        if self.start_error:
            raise ClientError({"Error": {"Code": self.start_error, "Message": "no"}},
                              "StartExecution")
        existing = self.executions.get(name)
        if existing and (existing["status"] != "RUNNING" or existing["input"] != input):
            raise ClientError({"Error": {"Code": "ExecutionAlreadyExists",
                                         "Message": "exists"}}, "StartExecution")
        self.executions[name] = {"status": "RUNNING", "input": input}
        return {"executionArn": arn(name)}

    def describe_execution(self, *, executionArn: str) -> dict:
        self.calls.append(("describe", executionArn.rsplit(":", 1)[-1]))
        name = executionArn.rsplit(":", 1)[-1]
        return {"executionArn": executionArn, "status": self.executions[name]["status"]}


def arn(name: str) -> str:
    return MACHINE.replace(":stateMachine:", ":execution:") + f":{name}"


@pytest.fixture()
def cloud(recipe_dir: Any, monkeypatch: pytest.MonkeyPatch) -> Cloud:
    recipe_dir.recipe(recipe_dir.valid())
    (recipe,) = recipe_dir.load()
    monkeypatch.setattr(builds, "resolve_one", lambda _env, _base: BASE_AMI)
    return Cloud(recipe.to_document())


@pytest.fixture()
def env(cloud: Cloud) -> Any:
    return SimpleNamespace(store=cloud, catalog=cloud, state_machine_arn=MACHINE,
                           client=lambda service, region=None: cloud)


@pytest.fixture()
def key(cloud: Cloud) -> str:
    return build_key("web", Recipe.from_document(cloud.record["document"]).hash, BASE_AMI)


def test_the_first_build_of_a_key_starts_first_and_claims_second(env: Any, cloud: Cloud,
                                                                 key: str) -> None:
    report = builds.start_build(env, "web")
    assert cloud.calls == [("start", key), ("claim", key)]
    assert report == {"recipe": "web", "build_id": key, "build_key": key, "base_ami": BASE_AMI,
                      "execution_arn": arn(key), "started": True, "outcome": "started"}
    assert json.loads(cloud.executions[key]["input"])["trigger"] == "manual"


def test_a_failed_start_leaves_no_claim(env: Any, cloud: Cloud, key: str) -> None:
    cloud.start_error = "ServiceUnavailable"
    with pytest.raises(AmiforgeError):
        builds.start_build(env, "web")
    assert cloud.calls == [("start", key)]
    assert "last_build_key" not in cloud.record  # detection will still build it


def test_an_execution_started_by_detection_is_followed_and_claimed(env: Any, cloud: Cloud,
                                                                   key: str) -> None:
    # Detection started the key's execution and died before its claim; no record yet.
    cloud.executions[key] = {"status": "RUNNING", "input": '{"trigger": "schedule"}'}
    report = builds.start_build(env, "web")
    assert (report["started"], report["outcome"]) == (False, "already running")
    assert (report["build_id"], report["execution_arn"]) == (key, arn(key))
    assert cloud.calls == [("start", key), ("claim", key), ("describe", key)]
    assert cloud.record["last_build_key"] == key  # claimed for it: detection will not retry
    assert list(cloud.executions) == [key]


def test_a_concurrent_identical_start_is_reported_by_the_claims_loser(env: Any, cloud: Cloud,
                                                                      key: str) -> None:
    # Another `amiforge build web` started the same execution (same input) and claimed it:
    # Step Functions answers this start with that execution.
    assert builds.start_build(env, "web")["outcome"] == "started"
    cloud.calls.clear()
    report = builds.start_build(env, "web")
    assert (report["started"], report["outcome"], report["build_id"]) == (
        False, "already running", key)
    assert list(cloud.executions) == [key]


def test_a_succeeded_execution_is_already_built(env: Any, cloud: Cloud, key: str) -> None:
    cloud.executions[key] = {"status": "SUCCEEDED", "input": "{}"}
    report = builds.start_build(env, "web")
    assert (report["started"], report["outcome"], report["build_id"]) == (
        False, "already built", key)
    assert [c for c in cloud.calls if c[0] == "start"] == [("start", key)]


def test_an_execution_that_failed_without_a_record_is_built_again(env: Any, cloud: Cloud,
                                                                  key: str) -> None:
    cloud.executions[key] = {"status": "FAILED", "input": "{}"}
    report = builds.start_build(env, "web")
    assert (report["started"], report["outcome"]) == (True, "started")
    assert report["build_id"].startswith(f"{key}-")
    assert cloud.executions[report["build_id"]]["status"] == "RUNNING"


def test_a_build_in_the_catalog_is_followed_without_starting(env: Any, cloud: Cloud,
                                                             key: str) -> None:
    cloud.records = [{"build_id": key, "status": "BUILDING"}]
    report = builds.start_build(env, "web")
    assert (report["started"], report["outcome"], report["build_id"]) == (
        False, "already running", key)
    assert cloud.calls == []


def test_a_finished_key_is_rebuilt_under_a_timestamped_name(env: Any, cloud: Cloud,
                                                            key: str) -> None:
    cloud.records = [{"build_id": key, "status": "AVAILABLE"}]
    cloud.executions[key] = {"status": "SUCCEEDED", "input": "{}"}
    report = builds.start_build(env, "web")
    assert (report["started"], report["outcome"]) == (True, "started")
    assert report["build_id"].startswith(f"{key}-")
    assert cloud.calls == [("start", report["build_id"])]  # no claim: the key was built
