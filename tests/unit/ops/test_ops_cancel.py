"""``amiforge cancel`` (ops/cancel.py): which build a target names, and that every target
is checked before anything is cancelled. The catalog and the recipe store are fakes that
fail the test if anything is written; the whole cancel runs in tests/e2e/test_cancel.py."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from amiforge.errors import InvalidInput, NotFound
from amiforge.ops.builds import still_running
from amiforge.ops.cancel import cancel, find_build

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:amiforge-build"
KEY = "web-app-0123456789abcdef0123"
REBUILD = f"{KEY}-20261201T214300"


class ReadOnly:
    """Catalog + recipe store; any write, or a client, fails the test."""

    def __init__(self, records: list[dict[str, Any]], published: set[str]) -> None:
        self.records = records
        self.published = published
        self.claims: dict[str, str] = {}

    def get(self, recipe: str, build_id: str) -> dict[str, Any] | None:
        return next((r for r in self.records
                     if (r["recipe"], r["build_id"]) == (recipe, build_id)), None)

    def history(self, recipe: str) -> list[dict[str, Any]]:
        return sorted((r for r in self.records if r["recipe"] == recipe),
                      key=lambda r: r["created_at"], reverse=True)

    def current(self, name: str) -> dict[str, Any] | None:
        if name not in self.published:
            return None
        return {"name": name, "last_build_id": self.claims.get(name)}

    def mark_cancelled(self, *args: Any, **kwargs: Any) -> bool:
        raise AssertionError("nothing may be cancelled")


def env_of(*records: dict[str, Any], published: tuple[str, ...] = ()) -> Any:
    data = ReadOnly(list(records), set(published))

    def no_client(service: str, region: str | None = None) -> Any:
        raise AssertionError(f"no {service} call may be made")

    return SimpleNamespace(catalog=data, store=data, client=no_client)


def build(recipe: str, build_id: str, status: str, created: str = "2026-12-01") -> dict:
    return {"recipe": recipe, "build_id": build_id, "status": status, "created_at": created}


@pytest.mark.parametrize("build_id", [KEY, REBUILD])
def test_a_build_id_names_its_build_whatever_its_recipes_hyphens(build_id: str) -> None:
    env = env_of(build("web-app", build_id, "BUILDING"))
    assert find_build(env, build_id)["build_id"] == build_id


def test_a_recipe_names_its_running_build() -> None:
    env = env_of(build("web-app", KEY, "FAILED", "2026-11-01"),
                 build("web-app", REBUILD, "BUILDING", "2026-12-01"))
    assert find_build(env, "web-app")["build_id"] == REBUILD


def test_a_recipe_with_no_running_build_says_what_its_newest_is() -> None:
    env = env_of(build("web-app", KEY, "AVAILABLE"), published=("web-app",))
    with pytest.raises(InvalidInput, match=f"its newest, {KEY}, is AVAILABLE"):
        find_build(env, "web-app")
    with pytest.raises(InvalidInput, match="never been built"):
        find_build(env_of(published=("web-app",)), "web-app")
    with pytest.raises(NotFound, match="neither a build id nor a published recipe"):
        find_build(env_of(), "nope")


class Executions:
    def __init__(self, running: dict[str, str]) -> None:
        self.running = running  # execution name -> status

    def describe_execution(self, *, executionArn: str) -> dict:  # noqa: N803
        name = executionArn.rsplit(":", 1)[-1]
        if name not in self.running:
            raise ClientError({"Error": {"Code": "ExecutionDoesNotExist", "Message": "no"}},
                              "DescribeExecution")
        return {"executionArn": executionArn, "status": self.running[name]}


def with_executions(env: Any, running: dict[str, str]) -> Any:
    sfn = Executions(running)
    env.client = lambda service, region=None: sfn
    env.state_machine_arn = MACHINE
    return env


def test_a_running_build_not_yet_recorded_is_found_by_its_execution() -> None:
    env = with_executions(env_of(published=("web-app",)), {KEY: "RUNNING"})
    env.store.claims = {"web-app": KEY}
    for target in (KEY, "web-app"):
        found = find_build(env, target)
        assert (found["build_id"], found["status"], found["unrecorded"]) == (
            KEY, "STARTING", True)
        assert found["execution_arn"] == MACHINE.replace(":stateMachine:", ":execution:") + \
            f":{KEY}"


def test_an_ended_or_unknown_execution_without_a_record_is_nothing_to_cancel() -> None:
    env = with_executions(env_of(published=("web-app",)), {KEY: "FAILED"})
    env.store.claims = {"web-app": KEY}
    with pytest.raises(InvalidInput, match="never been built"):
        find_build(env, "web-app")
    with pytest.raises(NotFound):
        find_build(env, REBUILD)  # no such execution


def test_one_finished_target_cancels_nothing() -> None:
    env = env_of(build("web-app", KEY, "BUILDING"), build("db", "db-" + "a" * 20, "FAILED"))
    with pytest.raises(InvalidInput, match=r"build db-a{20} is already FAILED"):
        cancel(env, [KEY, "db-" + "a" * 20])


def test_the_still_running_line_names_every_build_and_how_to_follow_or_cancel_them() -> None:
    line = still_running([{"recipe": "db", "build_id": "db-2"},
                          {"recipe": "web", "build_id": "web-1"}], "interrupted")
    assert line == ("interrupted; the builds go on: db-2 web-1 (follow with `amiforge "
                    "status` / `amiforge history db` / `amiforge history web`; stop with "
                    "`amiforge cancel db-2 web-1`)")
    assert "\n" not in line


def test_a_recipe_name_that_looks_like_a_key_is_still_its_recipe() -> None:
    # "a-0123456789abcdef0123" is a valid recipe name; its build id then holds two
    # "-<20 hex>" parts, and the recipe is the longer prefix, not "a".
    recipe = "a-0123456789abcdef0123"
    build_id = f"{recipe}-fedcba9876543210fedc"
    env = env_of(build(recipe, build_id, "BUILDING"))
    found = find_build(env, build_id)
    assert (found["recipe"], found["build_id"]) == (recipe, build_id)
