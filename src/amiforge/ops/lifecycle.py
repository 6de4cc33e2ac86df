"""`amiforge deploy` and `amiforge destroy`: put the stack in place; remove it, never the
data, and never under a running build.

A build in flight when its stack disappears would leave a running builder, an image and
a BUILDING record that no later stack could see or clean (the sweeper goes with the
stack). So :func:`destroy` refuses while any execution of the build machine runs, naming
the builds; with ``force`` it first stops each execution, cleans up what it started with
the same :func:`~amiforge.steps.cleanup.cleanup_build` every failure path uses, and
records it CANCELLED with the reason "stack destroyed". A step that was already running when
its execution stopped may still launch or image something, so the same cleanup runs once
more after CloudFormation has deleted the functions (nothing can start anything then).

The catalog and recipe tables are retained (DeletionPolicy Retain) and the result names
them: a later `amiforge deploy` of the same stack name re-attaches them
(:func:`amiforge.deploy.stack.retained_tables`), so history, `latest` and retention carry
on. The `/amiforge/<recipe>/latest` parameters and the images stay too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from amiforge.aws import stepfunctions as sfn_api
from amiforge.aws.catalog import IN_FLIGHT
from amiforge.aws.session import AwsContext
from amiforge.deploy import stack as stack_api
from amiforge.errors import InvalidInput, NotFound, OperationFailed
from amiforge.ops.connect import REQUIRED_OUTPUTS, connect
from amiforge.steps.cleanup import cleanup_build
from amiforge.steps.env import StepEnv

STACK_DESTROYED = "stack destroyed"


def deploy(aws: AwsContext, stack: str, overrides: Mapping[str, str], *,
           reset_parameters: bool = False,
           progress: stack_api.Progress = lambda _m: None) -> stack_api.Deployed:
    """Package the bundle, create or update ``stack`` and wait: its outputs, every
    parameter whose value changed and the retained tables it re-attached. Parameters not in
    ``overrides`` keep their current values (their defaults with ``reset_parameters``)."""
    return stack_api.deploy_stack(aws, stack, overrides, reset_parameters=reset_parameters,
                                  progress=progress)


class BuildsRunning(OperationFailed):
    """destroy without --force while builds run."""


def running_builds(env: StepEnv) -> list[dict[str, Any]]:
    """The builds whose execution is RUNNING: {recipe, build_id, execution_arn}."""
    if not env.state_machine_arn:
        return []
    sfn = env.client("stepfunctions")
    builds = []
    for execution in sfn_api.running_executions(sfn, env.state_machine_arn):
        described = sfn_api.describe(sfn, execution["executionArn"])
        try:
            payload = json.loads(described.get("input") or "{}")
        except ValueError:
            payload = {}
        builds.append({"recipe": payload.get("recipe") if isinstance(payload, dict) else None,
                       "build_id": execution["name"],
                       "execution_arn": execution["executionArn"]})
    return sorted(builds, key=lambda b: b["build_id"])


def cancel_builds(env: StepEnv, builds: list[dict[str, Any]],
                  reason: str = STACK_DESTROYED) -> list[dict[str, Any]]:
    """Record each build CANCELLED with ``reason`` (first: the deletion gate removes only
    an ended build's images), stop its execution, and clean up what it started."""
    sfn = env.client("stepfunctions")
    done = []
    for build in builds:
        recipe = build.get("recipe")
        record: Mapping[str, Any] = (
            env.catalog.get(recipe, build["build_id"]) if recipe else None) or {}
        recorded = recipe is not None and bool(record) and env.catalog.mark_cancelled(
            recipe, build["build_id"], reason=reason, live=tuple(sorted(IN_FLIGHT)))
        stopped = sfn_api.stop(sfn, build["execution_arn"], cause=reason)
        cleaned = _cleanup(env, build, record.get("regions") or [], reason)
        done.append({**build, "regions": record.get("regions") or [], "stopped": stopped,
                     "recorded_cancelled": recorded,
                     "terminated": cleaned["terminated"],
                     "deregistered": sorted(cleaned["deregistered"])})
    return done


def _cleanup(env: StepEnv, build: dict[str, Any], regions: list[str],
             reason: str) -> dict[str, Any]:
    """cleanup_build for a build whose execution input named its recipe; an execution
    without one (not started by amiforge) made nothing this stack can attribute."""
    if not build.get("recipe"):
        return {"terminated": [], "deregistered": {}}
    try:
        return cleanup_build(env, build["recipe"], build["build_id"], keep_image=None,
                             regions=regions, reason=reason)
    except InvalidInput:  # not a build id of that recipe: nothing is matched by pattern
        return {"terminated": [], "deregistered": {}}


def stack_env(aws: AwsContext, stack: str) -> StepEnv | None:
    """The stack's StepEnv; None if it has no outputs to build one from (a first create
    that rolled back made no state machine, so no build can run)."""
    described = stack_api.describe_stack(aws, stack)
    if described is None:
        raise NotFound(f"stack {stack!r} not found in {aws.resolved_region}",
                       hint="check --stack and --region")
    outputs = {o["OutputKey"] for o in described.get("Outputs", [])}
    return connect(aws, stack) if set(REQUIRED_OUTPUTS) <= outputs else None


def destroy(aws: AwsContext, stack: str, *, force: bool = False,
            progress: stack_api.Progress = lambda _m: None) -> dict[str, Any]:
    env = stack_env(aws, stack)
    if env is None:
        stack_api.destroy(aws, stack, progress=progress)
        return {"stack": stack, "deleted": True, "cancelled": [],
                "retained": stack_api.retained_tables(aws, stack)}
    running = running_builds(env)
    if running and not force:
        raise BuildsRunning(
            f"stack {stack} has {len(running)} build(s) running: "
            + ", ".join(b["build_id"] for b in running),
            hint="wait for them (`amiforge status`), or `amiforge destroy --force` to stop "
                 "them and clean up what they started")
    cancelled = cancel_builds(env, running)
    for build in cancelled:
        progress(f"stopped build {build['build_id']} ({STACK_DESTROYED})")
    stack_api.destroy(aws, stack, progress=progress)
    for build in cancelled:  # a step that was mid-flight when its execution stopped
        again = _cleanup(env, build, build["regions"], STACK_DESTROYED)
        build["terminated"] = sorted({*build["terminated"], *again["terminated"]})
        build["deregistered"] = sorted({*build["deregistered"], *again["deregistered"]})
    return {"stack": stack, "deleted": True, "cancelled": cancelled,
            "retained": {"RetainedCatalogTable": env.catalog_table,
                         "RetainedRecipesTable": env.recipes_table}}
