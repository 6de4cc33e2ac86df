"""``amiforge build RECIPE`` (ops/builds.py start_build): start first, record STARTING,
claim second, as detection does; one build per (recipe content, base) unless --rebuild;
and a report that says what happened to an execution someone else started."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from amiforge.core.hashing import build_key
from amiforge.core.parse import recipe_from_document
from amiforge.errors import AmiforgeError, NotFound
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
              recipe_hash: str, previous: str | None = None) -> bool:
        self.calls.append(("claim", build_id))
        if self.record.get("last_build_key") == key and (
                previous is None or self.record.get("last_build_id") != previous):
            return False
        self.record.update(last_build_key=key, last_build_id=build_id)
        return True

    # catalog
    def find_key(self, name: str, key: str) -> list[dict[str, Any]]:
        return list(self.records)

    def announce(self, record: dict[str, Any]) -> bool:
        self.calls.append(("announce", record["build_id"]))
        if any(r["build_id"] == record["build_id"] for r in self.records):
            return False
        self.records.append({**record, "status": "STARTING"})
        return True

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
    return build_key("web", recipe_from_document(cloud.record["document"]).hash, BASE_AMI)


def test_the_first_build_of_a_key_starts_records_starting_and_claims(env: Any, cloud: Cloud,
                                                                     key: str) -> None:
    report = builds.start_build(env, "web")
    assert cloud.calls == [("start", key), ("announce", key), ("claim", key)]
    assert report == {"recipe": "web", "build_id": key, "build_key": key, "base_ami": BASE_AMI,
                      "execution_arn": arn(key), "started": True, "outcome": "started",
                      "image_id": None}
    assert json.loads(cloud.executions[key]["input"])["trigger"] == "manual"
    assert [(r["build_id"], r["status"]) for r in cloud.records] == [(key, "STARTING")]


def test_a_failed_start_leaves_no_claim_and_no_record(env: Any, cloud: Cloud,
                                                      key: str) -> None:
    cloud.start_error = "ServiceUnavailable"
    with pytest.raises(AmiforgeError):
        builds.start_build(env, "web")
    assert cloud.calls == [("start", key)]
    assert "last_build_key" not in cloud.record  # detection will still build it
    assert cloud.records == []


def test_an_execution_started_by_detection_is_followed_and_claimed(env: Any, cloud: Cloud,
                                                                   key: str) -> None:
    # Detection started the key's execution and died before its record and claim.
    cloud.executions[key] = {"status": "RUNNING", "input": '{"trigger": "schedule"}'}
    report = builds.start_build(env, "web")
    assert (report["started"], report["outcome"]) == (False, "already running")
    assert (report["build_id"], report["execution_arn"]) == (key, arn(key))
    assert cloud.record["last_build_key"] == key  # claimed for it: detection will not retry
    assert list(cloud.executions) == [key]


def read_before(cloud: Cloud) -> Callable[[], None]:
    """Keep the claim and the catalog as they are now; calling the answer makes the next
    caller read them so (a racer whose reads came before another caller's start, record
    and claim, and whose writes come after)."""
    claim, records = dict(cloud.record), list(cloud.records)

    def replay() -> None:
        reads = iter([claim])
        cloud.current = lambda name: next(reads, cloud.record)  # type: ignore[method-assign]
        cloud.find_key = lambda name, key: records  # type: ignore[method-assign]
    return replay


def test_a_concurrent_identical_start_is_reported_by_the_claims_loser(env: Any, cloud: Cloud,
                                                                      key: str) -> None:
    racer_reads = read_before(cloud)
    assert builds.start_build(env, "web")["outcome"] == "started"
    racer_reads()
    report = builds.start_build(env, "web")
    assert (report["started"], report["outcome"], report["build_id"]) == (
        False, "already running", key)
    assert list(cloud.executions) == [key]


def test_a_build_in_flight_is_followed_without_starting(env: Any, cloud: Cloud,
                                                        key: str) -> None:
    cloud.executions[key] = {"status": "RUNNING", "input": "{}"}
    for status in ("STARTING", "BUILDING"):
        cloud.records = [{"build_id": key, "status": status}]
        report = builds.start_build(env, "web", rebuild=True)
        assert (report["started"], report["outcome"], report["build_id"]) == (
            False, "already running", key)
    assert [c for c in cloud.calls if c[0] != "describe"] == []


def test_a_starting_record_of_an_ended_execution_does_not_block(env: Any, cloud: Cloud,
                                                                key: str) -> None:
    cloud.executions[key] = {"status": "ABORTED", "input": "{}"}
    cloud.records = [{"build_id": key, "status": "STARTING"}]
    cloud.record.update(last_build_key=key, last_build_id=key)
    report = builds.start_build(env, "web")
    assert (report["started"], report["build_id"]) == (True, f"{key}-g2")


def test_an_available_key_is_already_built_and_starts_nothing(env: Any, cloud: Cloud,
                                                              key: str) -> None:
    cloud.records = [{"build_id": key, "status": "AVAILABLE", "image_id": "ami-0feed"}]
    report = builds.start_build(env, "web")
    assert (report["started"], report["outcome"], report["image_id"]) == (
        False, "already built", "ami-0feed")
    assert cloud.calls == []


def test_rebuild_starts_the_next_generation_once(env: Any, cloud: Cloud, key: str) -> None:
    cloud.records = [{"build_id": key, "status": "AVAILABLE", "created_at": "1"}]
    cloud.record.update(last_build_key=key, last_build_id=key)
    cloud.executions[key] = {"status": "SUCCEEDED", "input": "{}"}
    racer_reads = read_before(cloud)
    first = builds.start_build(env, "web", rebuild=True)
    assert (first["started"], first["build_id"]) == (True, f"{key}-g2")
    assert cloud.record["last_build_id"] == f"{key}-g2"
    racer_reads()
    second = builds.start_build(env, "web", rebuild=True)
    assert (second["started"], second["outcome"], second["build_id"]) == (
        False, "already running", f"{key}-g2")
    assert sorted(cloud.executions) == [key, f"{key}-g2"]


def test_a_failed_key_is_built_again_without_rebuild(env: Any, cloud: Cloud,
                                                     key: str) -> None:
    cloud.records = [{"build_id": key, "status": "FAILED"},
                     {"build_id": f"{key}-g2", "status": "FAILED"}]
    cloud.record.update(last_build_key=key, last_build_id=f"{key}-g2")
    report = builds.start_build(env, "web")
    assert (report["started"], report["build_id"]) == (True, f"{key}-g3")


def test_every_name_is_checked_before_anything_starts(env: Any, cloud: Cloud) -> None:
    with pytest.raises(NotFound) as raised:
        builds.start_builds(env, ["web", "nope", "other"])
    assert "'nope'" in str(raised.value) and "'other'" in str(raised.value)
    assert raised.value.exit_code == 2
    assert cloud.calls == [] and cloud.executions == {}
