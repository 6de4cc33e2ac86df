"""AwaitApproval's function (``steps/approval.py``) on the local cloud: the token parks on
the record (never as AwaitStop's ``task_token``), the record waits AWAITING_APPROVAL with
its deadline, the stopped builder goes (its image is made, the image stays), and a build
that ended meanwhile refuses to wait. The whole journey through the CLI is
tests/e2e/test_approval.py."""

from __future__ import annotations

import pytest
from tests.helpers import Publish, image_exists, imaged, instance_state

from amiforge.errors import OperationFailed
from amiforge.steps.approval import TOKEN_FIELD, request_approval
from amiforge.steps.env import StepEnv


def _event(state: dict, token: str = "token-1") -> dict:
    return {"token": token, "build": state["build"], "image": state["image"],
            "timeout_seconds": 3600}


def test_the_image_waits_with_its_token_and_the_builder_goes(env: StepEnv,
                                                             published: Publish) -> None:
    recipe = published(extra="release: {approval: manual}\n")
    state = imaged(env, recipe)
    build = state["build"]

    done = request_approval(_event(state), env)

    record = env.catalog.get(recipe.name, build["build_id"])
    assert record["status"] == done["status"] == "AWAITING_APPROVAL"
    assert record[TOKEN_FIELD] == "token-1" and "task_token" not in record
    assert record["approval_deadline"] == done["approval_deadline"] > record["approval_requested_at"]
    assert done["terminated"] == [state["launch"]["instance_id"]]
    assert instance_state(env, state["launch"]["instance_id"]) in ("shutting-down",
                                                                    "terminated")
    assert image_exists(env, state["image"]["image_id"])


def test_a_retried_task_keeps_only_the_newest_token(env: StepEnv, published: Publish) -> None:
    recipe = published(extra="release: {approval: manual}\n")
    state = imaged(env, recipe)
    request_approval(_event(state, "token-1"), env)
    request_approval(_event(state, "token-2"), env)
    assert env.catalog.get(recipe.name, state["build"]["build_id"])[TOKEN_FIELD] == "token-2"


def test_a_build_cancelled_meanwhile_refuses_to_wait(env: StepEnv, published: Publish) -> None:
    recipe = published(extra="release: {approval: manual}\n")
    state = imaged(env, recipe)
    build = state["build"]
    env.catalog.mark_cancelled(recipe.name, build["build_id"], reason="by a test",
                               live=("BUILDING",))
    with pytest.raises(OperationFailed, match="is CANCELLED, not BUILDING"):
        request_approval(_event(state), env)
    assert TOKEN_FIELD not in env.catalog.get(recipe.name, build["build_id"])
