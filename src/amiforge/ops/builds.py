"""Start builds and follow them to the end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import stepfunctions as sfn_api
from amiforge.aws.catalog import AVAILABLE, AWAITING_APPROVAL, IN_FLIGHT, STARTING
from amiforge.core.hashing import build_key
from amiforge.core.model import Recipe
from amiforge.core.parse import recipe_from_document
from amiforge.core.plan import generation_id, generation_of
from amiforge.core.rollback import revoked_build
from amiforge.core.rules import check_image_id
from amiforge.errors import BuildsStillRunning, InvalidInput, NotFound
from amiforge.steps.base import resolve_one
from amiforge.steps.detect import start_and_claim
from amiforge.steps.env import StepEnv

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
# The state machine's approval gate (release.approval: manual): a wait ends there too.
AWAIT_APPROVAL_STATE = "AwaitApproval"


STARTED, ALREADY_RUNNING, ALREADY_BUILT = "started", "already running", "already built"
REVOKED = "revoked"
# `build --base ami-…`: a one-off build of the published version on another base.
MANUAL_BASE = "manual-base"


def checked_base(env: StepEnv, image_id: str) -> str:
    """``build --base``: an AMI id that exists in the stack's region, or a clear refusal."""
    if problem := check_image_id(image_id):
        raise InvalidInput(f"--base {problem}")
    if ec2_api.describe_image(env.client("ec2"), image_id) is None:
        raise NotFound(f"--base {image_id} does not exist in {env.region} (or this account "
                       "cannot see it); nothing was started",
                       hint="check the id with `aws ec2 describe-images --image-ids ID`")
    return image_id


def published(env: StepEnv, names: Sequence[str]) -> dict[str, Recipe]:
    """The published recipes ``names``, all checked before anything starts: one unknown
    name refuses the whole command (naming every unknown one) and starts nothing."""
    records = {name: env.store.current(name) for name in dict.fromkeys(names)}
    missing = [name for name, record in records.items() if record is None]
    if missing:
        raise NotFound(f"recipe(s) {', '.join(repr(n) for n in missing)} not published; "
                       "nothing was started",
                       hint="check the names with `amiforge status`, or run "
                            "`amiforge publish DIR`")
    retired = [name for name, record in records.items() if record and record.get("retired_at")]
    if retired:
        raise InvalidInput(f"recipe(s) {', '.join(repr(n) for n in retired)} retired; "
                           "nothing was started",
                           hint="`amiforge publish DIR` with the recipe brings it back")
    return {name: recipe_from_document(record["document"])
            for name, record in records.items() if record is not None}


def start_builds(env: StepEnv, names: Sequence[str], *, trigger: str = "manual",
                 rebuild: bool = False, base: str | None = None) -> list[dict[str, Any]]:
    """:func:`start_build` for each name, after checking that every name is published
    (and ``base``, if given, is an existing AMI); each report also has a one-line
    ``summary`` of what the start did."""
    published(env, names)
    if base is not None:
        base = checked_base(env, base)
        trigger = MANUAL_BASE
    return [{**report, "summary": start_summary(report)}
            for report in (start_build(env, name, trigger=trigger, rebuild=rebuild,
                                       base=base)
                           for name in dict.fromkeys(names))]


def start_summary(build: dict[str, Any]) -> str:
    """"yes", or why not: "no: already built (ami-…); `--rebuild` builds it again"."""
    if build["started"]:
        return "yes"
    if build["outcome"] == ALREADY_BUILT and build.get("image_id"):
        return f"no: already built ({build['image_id']}); `--rebuild` builds it again"
    if build["outcome"] == REVOKED:
        return (f"no: build {build['build_id']} was revoked (`amiforge rollback`); "
                f"`amiforge release {build['build_id']}` brings it back, `--rebuild` builds "
                "it again")
    return f"no: {build['outcome']}"


def not_available(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The followed builds (:func:`wait_for_builds`) that did not end AVAILABLE (or
    AWAITING_APPROVAL: built, and waiting for `amiforge approve`)."""
    return [r for r in results if r["status"] not in (AVAILABLE, AWAITING_APPROVAL)]


def start_build(env: StepEnv, name: str, *, trigger: str = "manual",
                rebuild: bool = False, base: str | None = None) -> dict[str, Any]:
    """Start a build of the published recipe ``name`` on its current base image, at most
    once per (recipe content, base), however many callers race.

    A build of the key in flight (STARTING or BUILDING) is followed (``outcome`` "already
    running", so ``build --wait`` follows it). A key with an AVAILABLE build is "already
    built" unless ``rebuild``. Otherwise the key's next generation starts as detection
    starts one (:func:`~amiforge.steps.detect.start_and_claim`): the name is derived from
    what the caller read, so racing callers start the same execution, and the
    conditional claim names the one that started it; the others follow that build.

    ``base`` (``build --base``, checked by the caller) builds on that AMI instead of the
    recipe's own base, once: its key is (content, that base), so it is its own build,
    and it is not claimed on the recipe item, so detection goes on tracking the recipe's
    base. It is a build of the published version: AVAILABLE, it becomes ``latest`` like
    any build, until the next build of the recipe's own base replaces it.

    Returns {recipe, build_id, build_key, base_ami, execution_arn, started, outcome,
    image_id}: ``started`` is True only if this call started the execution.
    """
    claim = env.store.current(name)
    if claim is None:
        raise NotFound(f"recipe {name!r} is not published", hint="run `amiforge publish DIR`")
    if claim.get("retired_at"):
        raise InvalidInput(f"recipe {name!r} is retired",
                           hint="`amiforge publish DIR` with the recipe brings it back")
    recipe = recipe_from_document(claim["document"])
    base_ami = base or resolve_one(env, recipe.base)
    key = build_key(name, recipe.hash, base_ami)

    def report(build_id: str, outcome: str, image_id: str | None = None) -> dict[str, Any]:
        return {"recipe": name, "build_id": build_id, "build_key": key, "base_ami": base_ami,
                "execution_arn": execution_arn_for(env, build_id),
                "started": outcome == STARTED, "outcome": outcome, "image_id": image_id}

    earlier = sorted(env.catalog.find_key(name, key), key=lambda b: b.get("created_at", ""),
                     reverse=True)
    running = [b for b in earlier if b.get("status") in IN_FLIGHT and _alive(env, b)]
    if running:
        # Already building this version on this base: follow that build, start nothing.
        return report(running[0]["build_id"], ALREADY_RUNNING)
    built = [b for b in earlier if b.get("status") == AVAILABLE]
    if built and not rebuild:
        return report(built[0]["build_id"], ALREADY_BUILT, built[0].get("image_id"))
    gone = revoked_build(earlier)
    if gone is not None and not rebuild:  # rolled back: the same content, the same image
        return report(gone["build_id"], REVOKED, gone.get("image_id"))
    previous = claim.get("last_build_id") if claim.get("last_build_key") == key else None
    generation = max([generation_of(key, b["build_id"]) for b in earlier]
                     + [generation_of(key, previous) if previous else 0]) + 1
    build_id = generation_id(key, generation)
    if base is not None:
        started = start_and_claim(env, recipe, key, base_ami, trigger, build_id=build_id,
                                  claim=False)
        # Not started: a racing caller started this very name; follow it.
        return report(build_id, STARTED if started else ALREADY_RUNNING)
    if start_and_claim(env, recipe, key, base_ami, trigger, build_id=build_id,
                       previous=previous):
        return report(build_id, STARTED)
    # Another caller started it, or took the claim with a build of its own: follow that.
    now = env.store.current(name) or {}
    winner = now.get("last_build_id") if now.get("last_build_key") == key else build_id
    status = sfn_api.describe(env.client("stepfunctions"),
                              execution_arn_for(env, winner or build_id))["status"]
    return report(winner or build_id,
                  ALREADY_BUILT if status == "SUCCEEDED" and not rebuild else ALREADY_RUNNING)


def _alive(env: StepEnv, build: Mapping[str, Any]) -> bool:
    """A STARTING record whose execution ended before Resolve ran (stopped, say) is no
    build in flight: the sweeper fails it later; a new build need not wait for that."""
    if build.get("status") != STARTING:
        return True
    arn = build.get("execution_arn") or execution_arn_for(env, build["build_id"])
    status: str = sfn_api.describe(env.client("stepfunctions"), arn)["status"]
    return status == "RUNNING"


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
    return described["status"], sfn_api.last_entered_state(env.client("stepfunctions"),
                                                           execution_arn)


def polled_state(env: StepEnv, execution_arn: str) -> tuple[str, str | None]:
    """What a wait polls: (status, state entered last) from the execution's newest events
    alone (one call; :func:`current_state` asks DescribeExecution too). An execution
    stopped a moment ago may read RUNNING until its ExecutionAborted event is written."""
    return sfn_api.progress(env.client("stepfunctions"), execution_arn)


def _awaiting_approval(env: StepEnv, build: dict[str, Any]) -> bool:
    record = env.catalog.get(build["recipe"], build["build_id"])
    return record is not None and record.get("status") == AWAITING_APPROVAL


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
                status, state = polled_state(env, arn)
                if last.get(build_id) != (status, state):
                    last[build_id] = (status, state)
                    on_update(build, status, state)
                if status in TERMINAL or (state == AWAIT_APPROVAL_STATE
                                          and _awaiting_approval(env, build)):
                    # Parked at the approval gate: it waits for a person, not for us.
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
        record: Mapping[str, Any] = env.catalog.get(build["recipe"], build["build_id"]) or {}
        arn = build.get("execution_arn") or execution_arn_for(env, build["build_id"])
        described = sfn_api.describe(env.client("stepfunctions"), arn)
        results.append({**build, "execution_arn": arn,
                        "base_ami": build.get("base_ami") or record.get("base_ami"),
                        "status": record.get("status") or described["status"],
                        "image_id": record.get("image_id"), "reason": record.get("reason")
                        or described.get("cause"), "record": record})
    return results
