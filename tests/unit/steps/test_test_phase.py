"""AwaitTest reuses AwaitStop's task token: only the tester's stop may end that wait.

The builder stays stopped through the test phase; a late or repeated EventBridge delivery
of its stop event must not resume the tester's token (the test would be judged on a
tester still running)."""

from __future__ import annotations

from typing import Any

import pytest

from amiforge.aws.session import AwsContext
from amiforge.steps import stop_check
from amiforge.steps.env import StepEnv
from amiforge.steps.wait_stop import on_instance_state

RECIPE, BUILD = "web", "web-0123456789abcdef0123"


class FakeEc2:
    def describe_instances(self, InstanceIds: list[str]) -> dict:  # noqa: N803
        tags = [{"Key": "amiforge:recipe", "Value": RECIPE},
                {"Key": "amiforge:build-id", "Value": BUILD}]
        return {"Reservations": [{"Instances": [
            {"InstanceId": InstanceIds[0], "State": {"Name": "stopped"}, "Tags": tags}]}]}


class FakeSfn:
    def __init__(self) -> None:
        self.resumed: list[str] = []

    def send_task_success(self, *, taskToken: str, output: str) -> None:  # noqa: N803
        self.resumed.append(taskToken)


class FakeDynamo:
    def delete_item(self, **kwargs: Any) -> None:
        pass


class FakeCatalog:
    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    def get(self, recipe: str, build_id: str) -> dict[str, Any] | None:
        return dict(self.record) if (recipe, build_id) == (RECIPE, BUILD) else None



class FakeClaims:
    """aws/task_claims.TaskClaims over a FakeCatalog's one record."""

    def __init__(self, catalog: FakeCatalog) -> None:
        self.record = catalog.record

    def claim(self, recipe: str, build_id: str, token: str, *, lease_seconds: int) -> str:
        return "claimed" if self.record.get("task_token") == token else "gone"

    def release(self, recipe: str, build_id: str, token: str, *,
                answered: bool = True) -> None:
        if answered and self.record.get("task_token") == token:
            del self.record["task_token"]


@pytest.fixture(autouse=True)
def fake_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stop_check, "TaskClaims", FakeClaims)


def env_with(record: dict[str, Any], sfn: FakeSfn) -> StepEnv:
    aws = AwsContext(region="us-east-1")
    aws._clients.update({("ec2", "us-east-1"): FakeEc2(), ("stepfunctions", "us-east-1"): sfn,
                         ("dynamodb", "us-east-1"): FakeDynamo()})
    env = StepEnv(catalog_table="catalog", recipes_table="recipes", aws=aws)
    env.__dict__["catalog"] = FakeCatalog(record)  # cached_property: set it directly
    return env


def stopped(instance_id: str) -> dict[str, Any]:
    return {"detail": {"instance-id": instance_id, "state": "stopped"}}


def test_only_the_testers_stop_resumes_the_test_phase() -> None:
    sfn = FakeSfn()
    env = env_with({"task_token": "t-test", "instance_id": "i-0b", "tester_instance_id": "i-0t"},
                   sfn)
    assert on_instance_state(stopped("i-0b"), env) == {"ignored": "no waiting task"}
    assert sfn.resumed == []
    assert on_instance_state(stopped("i-0t"), env) == {"build_id": BUILD, "resumed": True}
    assert sfn.resumed == ["t-test"]


def test_without_a_tester_the_builders_stop_resumes_as_before() -> None:
    sfn = FakeSfn()
    env = env_with({"task_token": "t-build", "instance_id": "i-0b"}, sfn)
    assert on_instance_state(stopped("i-0b"), env) == {"build_id": BUILD, "resumed": True}
    assert sfn.resumed == ["t-build"]
