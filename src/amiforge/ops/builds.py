"""Start builds and follow them to the end."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from amiforge.aws import stepfunctions as sfn_api
from amiforge.aws.catalog import BUILDING
from amiforge.core.hashing import build_key
from amiforge.core.model import Recipe
from amiforge.errors import NotFound
from amiforge.steps.base import resolve_one
from amiforge.steps.env import StepEnv

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def start_build(env: StepEnv, name: str, *, trigger: str = "manual") -> dict[str, Any]:
    """Start a build of the published recipe ``name`` on its current base image.

    The execution is named by the build key (recipe hash + base AMI). If that key is
    already building, nothing starts and the running build is returned (``started`` False),
    so ``build --wait`` follows it. A key whose build has finished gets a timestamped name:
    a manual build runs again on purpose.
    """
    record = env.store.current(name)
    if record is None:
        raise NotFound(f"recipe {name!r} is not published", hint="run `amiforge publish DIR`")
    recipe = Recipe.from_document(record["document"])
    base_ami = resolve_one(env, recipe.base)
    key = build_key(name, recipe.hash, base_ami)
    earlier = env.catalog.find_key(name, key)
    running = [b for b in earlier if b.get("status") == BUILDING]
    if not running and not earlier and record.get("last_build_key") == key:
        # Claimed (by detection or a publish) a moment ago: its record is not written yet.
        running = [{"build_id": record.get("last_build_id") or key}]
    if running:
        # Already building this version on this base: follow that build, start nothing.
        build_id = running[0]["build_id"]
        return {"recipe": name, "build_id": build_id, "build_key": key, "base_ami": base_ami,
                "execution_arn": execution_arn_for(env, build_id), "started": False}
    # The first build of a key claims it (so detection will not start it again) and is
    # named by it; a deliberate rebuild of a finished key gets a timestamped name.
    claimed = not earlier and env.store.claim(name, key, build_id=key, base_ami=base_ami,
                                              recipe_hash=recipe.hash)
    build_id = key if claimed else f"{key}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    payload = {"recipe": name, "recipe_hash": recipe.hash, "base_ami": base_ami,
               "trigger": trigger}
    arn = sfn_api.start_build(env.client("stepfunctions"), env.state_machine_arn or "",
                              build_id, payload)
    return {"recipe": name, "build_id": build_id, "build_key": key, "base_ami": base_ami,
            "execution_arn": arn, "started": arn is not None}


def execution_arn_for(env: StepEnv, build_id: str) -> str:
    machine = env.state_machine_arn or ""
    return machine.replace(":stateMachine:", ":execution:") + f":{build_id}"


def current_state(env: StepEnv, execution_arn: str) -> tuple[str, str | None]:
    """(execution status, name of the state it is in or last entered)."""
    described = sfn_api.describe(env.client("stepfunctions"), execution_arn)
    state = None
    for event in reversed(sfn_api.history(env.client("stepfunctions"), execution_arn)):
        details = event.get("stateEnteredEventDetails")
        if details:
            state = details.get("name")
            break
    return described["status"], state


def wait_for_builds(env: StepEnv, builds: Sequence[dict[str, Any]], *,
                    on_update: Callable[[dict[str, Any], str, str | None], None] = (
                        lambda _b, _s, _st: None),
                    poll: float = 0.5, timeout: float = 3600) -> list[dict[str, Any]]:
    """Poll each build's execution until all end; return their catalog records."""
    pending = {b["build_id"]: b for b in builds}
    last: dict[str, tuple[str, str | None]] = {}
    deadline = time.monotonic() + timeout
    while pending:
        for build_id, build in list(pending.items()):
            arn = build.get("execution_arn") or execution_arn_for(env, build_id)
            status, state = current_state(env, arn)
            if last.get(build_id) != (status, state):
                last[build_id] = (status, state)
                on_update(build, status, state)
            if status in TERMINAL:
                del pending[build_id]
        if pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"builds still running after {timeout:.0f} s: "
                                   + ", ".join(sorted(pending)))
            time.sleep(poll)
    results = []
    for build in builds:
        record = env.catalog.get(build["recipe"], build["build_id"]) or {}
        arn = build.get("execution_arn") or execution_arn_for(env, build["build_id"])
        described = sfn_api.describe(env.client("stepfunctions"), arn)
        results.append({**build, "status": record.get("status") or described["status"],
                        "image_id": record.get("image_id"), "reason": record.get("reason")
                        or described.get("cause"), "record": record})
    return results
