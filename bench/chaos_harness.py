"""Chaos runs on the local cloud: many builds under faults, then an audit. Shared by the
``chaos`` test tier (tests/chaos) and ``bench/chaos.py``; a harness, not part of the local
cloud (which never imports it).

:func:`chaos_run` deploys a stack (or reuses it), turns the fault knobs of the running
cloud (:mod:`amiforge.localcloud.faults`), publishes recipes and starts their builds as ``amiforge
publish`` does, waits for every build, turns the knobs back, and audits the account:

* every build ended AVAILABLE, or FAILED with a reason;
* no duplicate: one catalog record and one execution per recipe, at most one builder
  per build attempt, at most one image per build;
* nothing left that the catalog does not account for: no live builder, no image or
  snapshot of a build that is not that build's AVAILABLE image (what the sweeper
  removes is reported, and the account is audited again after it).

The report carries the figures: builds, faults injected, SDK and state-machine retries,
crashes, dropped events, how builds were resumed (event, the AwaitStop poll, or the
scheduled stop check), RunInstances pacing against EC2's bucket, and wall time.
"""

from __future__ import annotations

import contextlib
import json
import textwrap
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amiforge.aws import stepfunctions as sfn_api
from amiforge.aws.catalog import AVAILABLE, FAILED
from amiforge.aws.session import AwsContext
from amiforge.core import ratelimit
from amiforge.core.recipes import load_recipes
from amiforge.core.tags import ATTEMPT, BUILD_ID
from amiforge.deploy import stack as stack_api
from amiforge.ops.connect import connect
from amiforge.ops.publish import publish
from amiforge.steps.detect import detect
from amiforge.steps.env import StepEnv

BASE_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"
LIVE_STATES = frozenset({"pending", "running", "stopping", "stopped"})
# Local stack parameters: recipe minutes and image polls in seconds (as `amiforge demo`).
STACK_PARAMETERS = {"SecondsPerMinute": "1", "PollSeconds": "1"}


@dataclass
class ChaosPlan:
    """What to run. Recipes ``<prefix>-<n>``; ``flaky`` of them fail their first launch
    (and are relaunched), ``failing`` always fail (they must end FAILED with a reason)."""

    builds: int = 20
    fault_rate: float = 0.10
    event_drop_rate: float = 0.10
    event_drop_sources: tuple[str, ...] = ()  # () : every source
    crash_rate: float = 0.05
    flaky: int = 2
    failing: int = 1
    prefix: str = "chaos"
    seed: int | None = 7
    timeout_minutes: int = 120          # recipe timeout: seconds on the local stack
    lambda_concurrency: int | None = 3  # environments per function (None: unlimited)
    concurrency_by_function: dict[str, int] = field(default_factory=dict)  # overrides
    time_scale: float = 30.0            # schedules: rate(1 minute) ticks every 2 s
    builder_seconds: float = 3.0        # a builder outlives AwaitStop's own look
    wait_seconds: float = 600.0
    sweep: bool = True
    expected: dict[str, str] = field(default_factory=dict)  # filled by write_recipes


@contextlib.contextmanager
def cloud_settings(cloud: Any, plan: ChaosPlan) -> Iterator[None]:
    """The plan's knobs on the running cloud, restored afterwards (the cloud is shared)."""
    before = cloud.faults.configure(fault_rate=plan.fault_rate,
                                    event_drop_rate=plan.event_drop_rate,
                                    event_drop_sources=plan.event_drop_sources,
                                    crash_rate=plan.crash_rate, crash_functions=(),
                                    seed=plan.seed)
    scale, builder_seconds = cloud.time_scale, cloud.builder_seconds
    runtime = cloud.runtime
    concurrency, idle = runtime.max_concurrency, runtime.max_idle
    overrides = dict(runtime.concurrency_by_function)
    cloud.time_scale = plan.time_scale
    cloud.builder_seconds = plan.builder_seconds
    runtime.set_max_concurrency(plan.lambda_concurrency, plan.concurrency_by_function)
    if plan.lambda_concurrency:
        runtime.max_idle = max(idle, 16 * plan.lambda_concurrency
                               + sum(plan.concurrency_by_function.values()))
    try:
        yield
    finally:
        cloud.faults.configure(**{k: before[k] for k in (
            "fault_rate", "event_drop_rate", "event_drop_sources", "crash_rate",
            "crash_functions")})
        cloud.time_scale = scale
        cloud.builder_seconds = builder_seconds
        runtime.set_max_concurrency(concurrency, overrides)
        runtime.max_idle = idle


def write_recipes(directory: Path, plan: ChaosPlan) -> dict[str, str]:
    """Write the plan's recipes; returns {recipe: expected status}."""
    (directory / "scripts").mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}
    for n in range(plan.builds):
        name = f"{plan.prefix}-{n:03d}"
        if n < plan.failing:
            script, status = "echo breaking\n# amiforge-sim: fail\n", FAILED
        elif n < plan.failing + plan.flaky:
            script, status = "echo sometimes\n# amiforge-sim: flaky\n", AVAILABLE
        else:
            script, status = f"echo building {name}\n", AVAILABLE
        (directory / "scripts" / f"{name}.sh").write_text("#!/bin/bash\n" + script)
        (directory / f"{name}.yaml").write_text(textwrap.dedent(f"""\
            name: {name}
            description: chaos recipe {n}
            base:
              ssm_parameter: {BASE_PARAMETER}
            build:
              platform: linux
              user_data: scripts/{name}.sh
              instance_types: [t3.small, t3a.small]
              timeout_minutes: {plan.timeout_minutes}
              retries: 1
            """))
        expected[name] = status
    return expected


def deploy_stack(cloud: Any, stack: str, parameters: dict[str, str] | None = None
                 ) -> tuple[AwsContext, StepEnv]:
    aws = AwsContext(region=cloud.region, endpoint_url=cloud.endpoint)
    stack_api.deploy(aws, stack, {**STACK_PARAMETERS, **(parameters or {})})
    return aws, connect(aws, stack)


def start_all(env: StepEnv, directory: Path) -> list[dict[str, Any]]:
    """``amiforge publish DIR``: upload every recipe, then one detection starts them.

    A build claimed meanwhile by the stack's own scheduled detection is the same build
    (the execution is named by the build key either way): it is followed too."""
    recipes = load_recipes(directory)
    publish(env, recipes, None)
    names = [r.name for r in recipes]
    report = detect({"recipes": names, "trigger": "publish"}, env)
    # A recipe the scheduled detection claimed between the publish and this detection is
    # skipped here ("building now"): its claim names the build to follow.
    claims = {r["name"]: r for r in env.store.named(names)}
    builds = []
    for decision in report["decisions"]:
        claim = claims.get(decision["recipe"]) or {}
        if decision.get("action") == "build":
            builds.append({"recipe": decision["recipe"],
                           "build_id": decision.get("build_id") or decision["build_key"]})
        elif decision.get("build_key") and claim.get("last_build_key") == decision[
                "build_key"] and claim.get("last_build_id"):
            builds.append({"recipe": decision["recipe"], "build_id": claim["last_build_id"]})
    return builds


def wait_all(env: StepEnv, builds: Sequence[dict[str, Any]], *, timeout: float,
             poll: float = 1.0) -> dict[str, dict[str, Any]]:
    """Wait until every build's execution has ended: one ListExecutions per poll."""
    wanted = {b["build_id"] for b in builds}
    sfn = env.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        executions = {e["name"]: e for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=env.state_machine_arn) for e in page["executions"]
            if e["name"] in wanted}
        if len(executions) == len(wanted) and all(
                e["status"] != "RUNNING" for e in executions.values()):
            return executions
        if time.monotonic() > deadline:
            running = sorted(wanted - {n for n, e in executions.items()
                                       if e["status"] != "RUNNING"})
            raise TimeoutError(f"{len(running)} builds still running after {timeout:.0f} s: "
                               + ", ".join(running[:10]))
        time.sleep(poll)


def chaos_run(cloud: Any, env: StepEnv, stack: str, directory: Path, plan: ChaosPlan, *,
              pace: tuple[int, float] | None = None) -> dict[str, Any]:
    """Run ``plan`` on ``cloud`` against ``stack`` (``env`` points at it); the report.

    ``pace``: the stack's (LaunchBurst, LaunchesPerSecond), to judge RunInstances
    against it as well as against EC2's bucket."""
    plan.expected = write_recipes(directory, plan)
    cloud.faults.reset_stats()
    started = time.monotonic()
    with cloud_settings(cloud, plan):
        builds = start_all(env, directory)
        executions = wait_all(env, builds, timeout=plan.wait_seconds)
        wall = time.monotonic() - started
        stats = cloud.faults.stats()
    records = {r["build_id"]: r for r in env.catalog.all_builds()}
    results = [{**b, "status": records.get(b["build_id"], {}).get("status")
                or executions[b["build_id"]]["status"],
                "reason": records.get(b["build_id"], {}).get("reason"),
                "execution_arn": executions[b["build_id"]]["executionArn"]} for b in builds]
    histories = {r["build_id"]: sfn_api.history(env.client("stepfunctions"),
                                                r["execution_arn"]) for r in results}
    run_instances = cloud.faults.run_instances_report(f"{stack}-")  # "<stack>-<step>"
    if pace is not None:
        executed = [c.at for c in cloud.faults.run_instances(f"{stack}-")
                    if c.outcome == "executed"]
        # Calls reach EC2 a little after their slot, by varying delays (signing, the
        # network, a busy host): judged exactly, a late call can bunch with the next one.
        # One token of slack absorbs that; production keeps the slack below EC2's bucket.
        run_instances["stack_pace"] = {
            "burst": pace[0], "per_second": pace[1],
            "violations": ratelimit.bucket_violations(executed, burst=pace[0],
                                                      per_second=pace[1]),
            "violations_with_one_token_slack": ratelimit.bucket_violations(
                executed, burst=pace[0] + 1, per_second=pace[1])}
    report: dict[str, Any] = {
        "plan": {k: v for k, v in plan.__dict__.items() if k != "expected"},
        "builds": len(results),
        "outcomes": dict(Counter(r["status"] for r in results)),
        "unexpected": [{"recipe": r["recipe"], "status": r["status"], "reason": r["reason"]}
                       for r in results if r["status"] != plan.expected.get(r["recipe"])],
        "failed_without_reason": [r["recipe"] for r in results
                                  if r["status"] != AVAILABLE and not r.get("reason")],
        "wall_seconds": round(wall, 1),
        "injected": {"faults": stats["faults"], "crashes": stats["crashes"],
                     "events": stats["events"], "function_calls": stats["function_calls"]},
        "retries": {"sdk": stats["sdk_retries"], **state_machine_retries(histories)},
        "resumed_by": resumed_by(histories),
        "run_instances": run_instances,
    }
    run_instances["pacing"] = launch_pacing(histories)
    account = Account.read(env)
    report["duplicates"] = duplicates(env, results, records, account)
    report["leftovers"] = account.leftovers(results, records)
    if plan.sweep:
        from amiforge.steps.sweep import sweep

        swept = sweep({}, env)
        report["sweeper"] = {"summary": swept["summary"], "errors": swept["errors"]}
        report["leftovers_after_sweep"] = Account.read(env).leftovers(results, records)
    return report


# -- the audit ---------------------------------------------------------------------------

def state_machine_retries(histories: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Task attempts beyond the first, from the executions' histories, and their causes."""
    retried, causes = 0, Counter()
    for history in histories.values():
        entered = scheduled = 0
        for event in history:
            kind = event["type"]
            if kind == "TaskStateEntered":
                entered += 1
            elif kind in ("LambdaFunctionScheduled", "TaskScheduled"):
                scheduled += 1
            elif kind in ("LambdaFunctionFailed", "TaskFailed", "LambdaFunctionTimedOut"):
                details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
                causes[str(details.get("error", kind))] += 1
        retried += max(0, scheduled - entered)
    return {"state_machine": retried, "task_failures_by_error": dict(sorted(causes.items()))}


def resumed_by(histories: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """How each AwaitStop ended: the EC2 event, register_wait's own look, or the stop check."""
    sources: Counter[str] = Counter()
    for history in histories.values():
        for event in history:
            if event["type"] != "TaskSucceeded":
                continue
            output = event.get("taskSucceededEventDetails", {}).get("output") or "{}"
            with contextlib.suppress(ValueError, AttributeError):
                source = json.loads(output).get("source")
                if source:
                    sources[source] += 1
    return dict(sorted(sources.items()))


def launch_pacing(histories: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """How the launch budget held launches back: waits in Resolve's and Launch's
    launches, and LaunchThrottled."""
    waited, seconds, throttled = 0, 0.0, 0
    for history in histories.values():
        for event in history:
            if event["type"] == "LambdaFunctionFailed" and event.get(
                    "lambdaFunctionFailedEventDetails", {}).get("error") == "LaunchThrottled":
                throttled += 1
            if event["type"] != "LambdaFunctionSucceeded":
                continue
            output = event.get("lambdaFunctionSucceededEventDetails", {}).get("output") or "{}"
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                answer = json.loads(output)
                # Launch answers its launch; Resolve, which launches the first, the state.
                launched = answer.get("launch") if "build" in answer else answer
                paced = float((launched or {}).get("paced_seconds") or 0)
                if paced > 0:
                    waited, seconds = waited + 1, seconds + paced
    return {"launches_that_waited": waited, "seconds_waited": round(seconds, 1),
            "launch_throttled": throttled}


@dataclass
class Account:
    """amiforge's builders, images and snapshots in the home region, by build id: three
    tag-filtered calls, however many builds."""

    instances: dict[str, list[dict[str, Any]]]
    images: dict[str, list[dict[str, Any]]]
    snapshots: dict[str, list[dict[str, Any]]]

    @classmethod
    def read(cls, env: StepEnv) -> Account:
        ec2 = env.client("ec2")
        tagged = [{"Name": "tag-key", "Values": [BUILD_ID]}]
        instances = [i for page in ec2.get_paginator("describe_instances").paginate(
            Filters=tagged) for r in page["Reservations"] for i in r["Instances"]]
        images = ec2.describe_images(Owners=["self"], Filters=tagged)["Images"]
        snapshots = [s for page in ec2.get_paginator("describe_snapshots").paginate(
            OwnerIds=["self"], Filters=tagged) for s in page["Snapshots"]]
        return cls(_by_build(instances), _by_build(images), _by_build(snapshots))

    def leftovers(self, results: Sequence[dict[str, Any]],
                  records: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
        """Live builders, and images or snapshots the catalog does not account for."""
        out: dict[str, list[str]] = {"instances": [], "images": [], "snapshots": []}
        for result in results:
            build_id = result["build_id"]
            record = records.get(build_id) or {}
            kept: set[str] = set()
            if record.get("status") == AVAILABLE:
                kept = {record.get("image_id"), *(record.get("images") or {}).values()} - {None}
            out["instances"] += [i["InstanceId"] for i in self.instances.get(build_id, [])
                                 if i["State"]["Name"] in LIVE_STATES]
            kept_snapshots: set[str] = set()
            for image in self.images.get(build_id, []):
                if image["ImageId"] in kept:
                    kept_snapshots |= {m["Ebs"]["SnapshotId"] for m in
                                       image.get("BlockDeviceMappings", []) if "Ebs" in m}
                else:
                    out["images"].append(image["ImageId"])
            out["snapshots"] += [s["SnapshotId"] for s in self.snapshots.get(build_id, [])
                                 if s["SnapshotId"] not in kept_snapshots]
        return out


def duplicates(env: StepEnv, results: Sequence[dict[str, Any]],
               records: dict[str, dict[str, Any]], account: Account) -> dict[str, Any]:
    """Anything built twice: records per recipe, executions, builders per attempt, images."""
    wanted = {r["recipe"] for r in results}
    per_recipe = Counter(r["recipe"] for r in records.values() if r.get("recipe") in wanted)
    executions: Counter[str] = Counter()
    for page in env.client("stepfunctions").get_paginator("list_executions").paginate(
            stateMachineArn=env.state_machine_arn):
        executions.update(e["name"] for e in page["executions"])
    problems = [f"{recipe}: {per_recipe[recipe]} catalog records" for recipe in sorted(wanted)
                if per_recipe[recipe] != 1]
    for result in results:
        build_id = result["build_id"]
        if executions[build_id] != 1:
            problems.append(f"{build_id}: {executions[build_id]} executions")
        attempts = Counter(_tag(i, ATTEMPT) for i in account.instances.get(build_id, []))
        problems += [f"{build_id}: {n} builders for attempt {a}"
                     for a, n in attempts.items() if n > 1]
        images = account.images.get(build_id, [])
        if len(images) > 1:
            problems.append(f"{build_id}: {len(images)} images")
    return {"problems": problems, "executions": sum(executions[r["build_id"]] for r in results)}


def _tag(resource: dict[str, Any], key: str) -> str:
    return next((t["Value"] for t in resource.get("Tags", []) if t["Key"] == key), "")


def _by_build(resources: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        out.setdefault(_tag(resource, BUILD_ID), []).append(resource)
    return out
