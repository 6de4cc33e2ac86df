"""Start builds and follow them to the end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from amiforge.aws import stepfunctions as sfn_api
from amiforge.aws.catalog import BUILDING
from amiforge.core.hashing import build_key
from amiforge.core.model import Recipe
from amiforge.errors import BuildsStillRunning, NotFound
from amiforge.steps.base import resolve_one
from amiforge.steps.detect import start_and_claim
from amiforge.steps.env import StepEnv

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


STARTED, ALREADY_RUNNING, ALREADY_BUILT = "started", "already running", "already built"


def start_build(env: StepEnv, name: str, *, trigger: str = "manual") -> dict[str, Any]:
    """Start a build of the published recipe ``name`` on its current base image.

    The first build of a build key (recipe hash + base AMI) is named by the key and
    started as detection starts one (:func:`~amiforge.steps.detect.start_and_claim`):
    start first, claim second, so a failed StartExecution leaves no claim without a build.
    If that execution exists already (detection, a publish or another ``amiforge build``
    started it), nothing starts: a running one is followed (``outcome`` "already
    running", so ``build --wait`` follows it), a succeeded one is "already built". A key
    whose build has finished (in the catalog, or an execution that ended without an image)
    gets a timestamped name: a manual build runs again on purpose.

    Returns {recipe, build_id, build_key, base_ami, execution_arn, started, outcome}:
    ``started`` is True only if this call started the execution.
    """
    record = env.store.current(name)
    if record is None:
        raise NotFound(f"recipe {name!r} is not published", hint="run `amiforge publish DIR`")
    recipe = Recipe.from_document(record["document"])
    base_ami = resolve_one(env, recipe.base)
    key = build_key(name, recipe.hash, base_ami)

    def report(build_id: str, outcome: str) -> dict[str, Any]:
        return {"recipe": name, "build_id": build_id, "build_key": key, "base_ami": base_ami,
                "execution_arn": execution_arn_for(env, build_id),
                "started": outcome == STARTED, "outcome": outcome}

    earlier = env.catalog.find_key(name, key)
    running = [b for b in earlier if b.get("status") == BUILDING]
    if running:
        # Already building this version on this base: follow that build, start nothing.
        return report(running[0]["build_id"], ALREADY_RUNNING)
    if not earlier:
        if start_and_claim(env, recipe, key, base_ami, trigger):
            return report(key, STARTED)
        # The key's execution exists (its record may not be written yet): say what it is.
        status = sfn_api.describe(env.client("stepfunctions"),
                                  execution_arn_for(env, key))["status"]
        if status == "RUNNING":
            return report(key, ALREADY_RUNNING)
        if status == "SUCCEEDED":
            return report(key, ALREADY_BUILT)
        # It ended without an image: build again, like any finished key.
    build_id = f"{key}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    payload = {"recipe": name, "recipe_hash": recipe.hash, "base_ami": base_ami,
               "trigger": trigger}
    arn = sfn_api.start_build(env.client("stepfunctions"), env.state_machine_arn or "",
                              build_id, payload)
    # None: another rebuild took this name in the same second; follow it.
    return report(build_id, STARTED if arn else ALREADY_RUNNING)


def execution_arn_for(env: StepEnv, build_id: str) -> str:
    machine = env.state_machine_arn or ""
    return machine.replace(":stateMachine:", ":execution:") + f":{build_id}"


def still_running(builds: Iterable[dict[str, Any]], why: str) -> str:
    """One line: the wait ended, the builds did not; how to follow or cancel them."""
    builds = sorted(builds, key=lambda b: b["build_id"])
    ids = " ".join(b["build_id"] for b in builds)
    recipes = sorted({b["recipe"] for b in builds})
    follow = " / ".join(["`amiforge status`", *(f"`amiforge history {r}`" for r in recipes)])
    return (f"{why}; the build{'s go' if len(builds) > 1 else ' goes'} on: {ids} "
            f"(follow with {follow}; stop with `amiforge cancel {ids}`)")


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
    """Poll each build's execution until all end; return their catalog records.

    A wait that reaches ``timeout`` seconds, or is interrupted (Ctrl-C), raises
    :class:`BuildsStillRunning`: only the wait ends, the builds go on, and the message says
    how to follow or cancel them.
    """
    pending = {b["build_id"]: b for b in builds}
    last: dict[str, tuple[str, str | None]] = {}
    deadline = time.monotonic() + timeout
    try:
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
                    raise BuildsStillRunning(still_running(
                        pending.values(), f"stopped waiting after {timeout:g} s (--timeout)"))
                time.sleep(poll)
    except KeyboardInterrupt:
        raise BuildsStillRunning(still_running(pending.values(), "interrupted")) from None
    results = []
    for build in builds:
        record = env.catalog.get(build["recipe"], build["build_id"]) or {}
        arn = build.get("execution_arn") or execution_arn_for(env, build["build_id"])
        described = sfn_api.describe(env.client("stepfunctions"), arn)
        results.append({**build, "status": record.get("status") or described["status"],
                        "image_id": record.get("image_id"), "reason": record.get("reason")
                        or described.get("cause"), "record": record})
    return results
