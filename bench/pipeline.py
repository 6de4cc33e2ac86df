"""Benchmark: amiforge's own overhead around a build, at 1 and at 20 concurrent builds.

Prints one JSON object. On the local cloud, with the production stack deployed as the demo
does (``SecondsPerMinute=1``, ``PollSeconds=1``), recipes published and builds started with
``start_build`` and followed with ``wait_for_builds``:

* single builds, one at a time: "cold" (every idle Lambda environment discarded first, as
  after an idle hour on AWS) and "warm" (environments kept from the previous build);
* ``CONCURRENT`` builds started together.

Per build it measures (all clocks are this process's wall clock, in seconds):

* ``invocations_stop_to_create_image`` (target: <= 1): this build's Lambda invocations
  that started between the builder's stop and the CreateImage call;
* ``stop_to_create_image`` (target: < 2 s at 1 build, < 5 s at 20): from the moment the
  simulated builder is stopped (the simulator's ``stopped`` emit, wrapped) to the
  CreateImage call reaching EC2 (the image's ``creation_date`` in moto's backend, set
  inside the CreateImage call). Also to the image's state being entered (``ImageCreated``
  when the stop event's invocation made it, else ``CreateImage``; the execution history,
  ms resolution), with the steps in between: the EventBridge event reaching the
  ``instance_state`` Lambda, SendTaskSuccess resuming AwaitStop, Verify if it ran;
* ``overhead``: the execution's run time (startDate to stopDate) minus ``builder_seconds``
  (the simulated script's run time), and minus the builder's whole simulated life
  (``pending`` to ``stopped``, which adds its boot and stopping delays);
* state transitions (``*StateEntered`` history events: what Standard workflows bill) and
  Lambda invocations, counted twice: from the history (``LambdaFunctionScheduled`` +
  ``TaskScheduled``) plus the EventBridge-triggered ``instance_state`` calls and the cleanup
  queue's consumer, and from the local Lambda runtime itself (its ``invoke``, wrapped),
  with each invocation's duration; scheduled ticks (the stop-check fallback) are counted
  apart, as they cost the same with or without builds; and the execution environments
  the runtime started (each a cold start).

Images are ``available`` at once here (the local cloud's default ``image_pending_seconds``
of 0); AwaitImage waits for EC2's AMI event with a task token, so a longer snapshot adds no
transitions: ``bench/image_wait.py`` measures that (see docs/performance.md).

    python bench/pipeline.py [SINGLE_RUNS] [CONCURRENT]
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from amiforge.aws import stepfunctions as sfn_api  # noqa: E402
from amiforge.aws.session import AwsContext  # noqa: E402
from amiforge.core.recipes import load_recipes  # noqa: E402
from amiforge.core.tags import BUILD_ID  # noqa: E402
from amiforge.deploy import stack as stack_api  # noqa: E402
from amiforge.localcloud.server import LocalCloud  # noqa: E402
from amiforge.ops.builds import start_build, wait_for_builds  # noqa: E402
from amiforge.ops.connect import connect  # noqa: E402
from amiforge.ops.demo import LOCAL_STACK_PARAMETERS, seed_bases  # noqa: E402
from amiforge.ops.publish import publish  # noqa: E402
from amiforge.steps.env import StepEnv  # noqa: E402

STACK = "amiforge-bench"
BUILDER_SECONDS = 2.0
BASE = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"
# AWS list prices (us-east-1): Standard workflow transitions, Lambda requests and GB-s.
PRICE_TRANSITION = 0.025 / 1000
PRICE_REQUEST = 0.20 / 1_000_000
PRICE_GB_SECOND = 0.0000166667
LAMBDA_GB = 0.25  # every pipeline function is deployed with MemorySize 256


class Probe:
    """Wraps the simulator's emit and the Lambda runtime's invoke to timestamp both."""

    def __init__(self, cloud: LocalCloud) -> None:
        self.emits: dict[tuple[str, str], float] = {}
        self.invocations: list[dict[str, Any]] = []
        self.inflight = 0
        self._lock = threading.Lock()
        emit, runtime = cloud.simulator.emit, cloud.runtime
        assert runtime is not None
        invoke = runtime.invoke

        def timed_emit(account: str, region: str, instance_id: str, state: str) -> None:
            self.emits.setdefault((instance_id, state), time.time())
            emit(account, region, instance_id, state)

        def timed_invoke(fn: Any, event: Any) -> tuple[str, bool, str]:
            with self._lock:
                self.inflight += 1
            started = time.time()
            try:
                return invoke(fn, event)
            finally:
                event = event if isinstance(event, dict) else {}
                detail = event.get("detail", {})
                bodies = " ".join(str(r.get("body")) for r in event.get("Records", []))
                build = event.get("build")
                build_id = (build.get("build_id") if isinstance(build, dict)
                            else event.get("build_id"))
                with self._lock:
                    self.inflight -= 1
                    self.invocations.append({
                        "handler": (fn.handler or "").rsplit(".", 1)[-1],
                        "started": started, "ms": (time.time() - started) * 1000,
                        "instance_id": detail.get("instance-id"), "state": detail.get("state"),
                        "build_id": build_id,
                        "sqs_bodies": bodies, "trigger": trigger_of(event)})

        spawn = runtime._spawn
        self._spawned = 0

        def counted_spawn(*args: Any) -> Any:
            with self._lock:
                self._spawned += 1
            return spawn(*args)

        cloud.simulator.emit = timed_emit  # type: ignore[method-assign]
        runtime.invoke = timed_invoke  # type: ignore[method-assign]
        runtime._spawn = counted_spawn  # type: ignore[method-assign]

    def settle(self, since: float, quiet: float = 1.5, limit: float = 60.0) -> None:
        """Wait for the asynchronous invocations the builds started at ``since`` leave
        behind: every instance's ``stopped`` event handled (EventBridge), then quiet.
        (The rule delivers no ``terminated`` event: Finish's needs no work.)"""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with self._lock:
                launched = {i for (i, state), t in self.emits.items()
                            if state == "pending" and t >= since}
                handled = {i["instance_id"] for i in self.invocations
                           if i["state"] == "stopped"}
                last = max((i["started"] for i in self.invocations), default=0.0)
                idle = self.inflight == 0 and time.time() - last > quiet
            if idle and launched <= handled:
                return
            time.sleep(0.2)

    def spawned(self) -> int:
        """Execution environments started so far (each one a cold start)."""
        return self._spawned

    def take(self) -> list[dict[str, Any]]:
        with self._lock:
            taken, self.invocations = self.invocations, []
        return taken


def trigger_of(event: dict[str, Any]) -> str:
    """What called a function: a build's state machine, EC2's event, the cleanup queue,
    or a schedule (the stop-check tick, detection...), which is not a per-build cost."""
    if "detail" in event:
        return "eventbridge_ec2"
    if "Records" in event:
        return "sqs"
    if {"build", "token", "input"} & event.keys():
        return "step_functions"
    return "schedule"


def write_recipes(directory: Path, count: int, timeout_minutes: int) -> None:
    """Minimal Linux recipes bench-0..N-1 on one base (as tests/e2e/conftest.py writes)."""
    (directory / "scripts").mkdir(parents=True)
    for i in range(count):
        name = f"bench-{i}"
        (directory / "scripts" / f"{name}.sh").write_text("#!/bin/bash\necho hello\n")
        (directory / f"{name}.yaml").write_text(textwrap.dedent(f"""\
            name: {name}
            base:
              ssm_parameter: {BASE}
            build:
              platform: linux
              user_data: scripts/{name}.sh
              instance_types: [t3.small]
              timeout_minutes: {timeout_minutes}
              retries: 0
            """))


def stamp(event: dict[str, Any]) -> float:
    return event["timestamp"].timestamp()


def analyse(env: StepEnv, cloud: LocalCloud, probe: Probe, build: dict[str, Any],
            invocations: list[dict[str, Any]]) -> dict[str, Any]:
    from moto.ec2.models import ec2_backends

    sfn = env.client("stepfunctions")
    described = sfn_api.describe(sfn, build["execution_arn"])
    events = sfn_api.history(sfn, build["execution_arn"])
    entered = {e["stateEnteredEventDetails"]["name"]: stamp(e)
               for e in reversed(events) if "stateEnteredEventDetails" in e}
    exited = {e["stateExitedEventDetails"]["name"]: stamp(e)
              for e in events if "stateExitedEventDetails" in e}
    kinds = Counter(e["type"] for e in events)
    resumed = next(e for e in events if e["type"] == "TaskSucceeded")
    instances = [i for r in env.client("ec2").describe_instances(
        Filters=[{"Name": f"tag:{BUILD_ID}", "Values": [build["build_id"]]}])["Reservations"]
        for i in r["Instances"]]
    (instance_id,) = {i["InstanceId"] for i in instances}
    stopped, pending = probe.emits[(instance_id, "stopped")], probe.emits[(instance_id, "pending")]
    image_id = build["image_id"]
    ami = ec2_backends[cloud.account][cloud.region].amis[image_id]
    create_call = ami.creation_date.replace(tzinfo=UTC).timestamp()
    event_lambda = min(i["started"] for i in invocations
                       if i["instance_id"] == instance_id and i["state"] == "stopped")
    # The invocations of this build from the stop to the CreateImage call: the stop
    # event's, and any state's in between (Verify, CreateImage before they merged).
    stop_to_image = sum(1 for i in invocations
                        if (i["instance_id"] == instance_id
                            or i["build_id"] == build["build_id"])
                        and stopped <= i["started"] <= create_call)
    # The image was made at the stop event (ImageCreated) or by the CreateImage state.
    image_state = entered.get("CreateImage", entered.get("ImageCreated"))
    if image_state is None:
        raise SystemExit(f"{build['build_id']}: neither CreateImage nor ImageCreated ran")
    total = (described["stopDate"] - described["startDate"]).total_seconds()
    from_history = kinds["LambdaFunctionScheduled"] + kinds["TaskScheduled"]
    from_events = sum(1 for i in invocations if i["instance_id"] == instance_id)
    # The cleanup queue's consumer (SQS, BatchSize 5: one call may serve several builds).
    from_sqs = sum(1 for i in invocations if build["build_id"] in i["sqs_bodies"])
    return {
        "status": build["status"],
        "stop_to_create_image_call_s": create_call - stopped,
        "stop_to_create_image_state_s": image_state - stopped,
        "invocations_stop_to_create_image": stop_to_image,
        "image_made_at_stop_event": int("ImageCreated" in entered),
        "stop_to_instance_state_lambda_s": event_lambda - stopped,
        "stop_to_await_stop_resumed_s": stamp(resumed) - stopped,
        "resumed_by": json.loads(resumed["taskSucceededEventDetails"]["output"])["source"],
        "verify_s": exited.get("Verify", 0.0) - entered.get("Verify", 0.0),
        "total_s": total,
        "overhead_minus_builder_seconds_s": total - BUILDER_SECONDS,
        "overhead_minus_instance_life_s": total - (stopped - pending),
        "start_to_launched_s": pending - described["startDate"].timestamp(),
        "state_transitions": sum(n for k, n in kinds.items() if k.endswith("StateEntered")),
        "lambda_invocations": from_history + from_events + from_sqs,
        "lambda_from_history": from_history,
        "lambda_from_eventbridge": from_events,
        "lambda_from_sqs": from_sqs,
        "seconds_in_state": {name: round(exited.get(name, entered[name]) - entered[name], 3)
                             for name in entered},
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    numeric = [k for k, v in rows[0].items() if isinstance(v, int | float)]
    out: dict[str, Any] = {"builds": len(rows),
                           "statuses": dict(Counter(r["status"] for r in rows)),
                           "resumed_by": dict(Counter(r["resumed_by"] for r in rows))}
    for key in numeric:
        values = [r[key] for r in rows]
        out[key] = {"median": round(statistics.median(values), 3),
                    "max": round(max(values), 3)}
    states: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        for name, seconds in row["seconds_in_state"].items():
            states[name].append(seconds)
    out["median_seconds_in_state"] = {k: round(statistics.median(v), 3)
                                      for k, v in states.items()}
    return out


def runtime_counts(every: list[dict[str, Any]], builds: int) -> dict[str, Any]:
    invocations = [i for i in every if i["trigger"] != "schedule"]
    by_handler = Counter(i["handler"] for i in invocations)
    total_ms = sum(i["ms"] for i in invocations)
    per_build = len(invocations) / builds
    gb_s = total_ms / 1000 * LAMBDA_GB / builds
    return {"invocations_per_build": round(per_build, 2),
            "invocations_by_trigger_per_build": {
                t: round(n / builds, 2)
                for t, n in Counter(i["trigger"] for i in invocations).items()},
            "by_handler": dict(sorted(by_handler.items())),
            "median_ms_by_handler": {h: round(statistics.median(
                i["ms"] for i in invocations if i["handler"] == h), 1) for h in sorted(by_handler)},
            "lambda_ms_per_build": round(total_ms / builds, 1),
            "gb_seconds_per_build": round(gb_s, 3),
            "by_trigger": dict(Counter(i["trigger"] for i in every)),
            "scheduled_not_per_build": dict(Counter(i["handler"] for i in every
                                                    if i["trigger"] == "schedule"))}


def phase(env: StepEnv, cloud: LocalCloud, probe: Probe, names: list[str],
          label: str) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    probe.take()
    spawned = probe.spawned()
    since, started = time.time(), time.monotonic()
    builds = [start_build(env, name, trigger="bench") for name in names]
    # Poll gently: wait_for_builds reads every build's history per round, in the process
    # that also serves the emulator (one GIL) on the 2 cores the Lambdas share. Timings
    # come from the history and the probes, not from when the poll notices the end.
    results = wait_for_builds(env, builds, poll=2.0 if len(names) > 1 else 0.25, timeout=600)
    wall = time.monotonic() - started
    probe.settle(since)
    invocations = probe.take()
    # Only a build that reached its image has a stop-to-CreateImage; a failed one (none
    # is expected) is counted in ``failed`` and left out of the timings.
    rows = [analyse(env, cloud, probe, b, invocations) for b in results
            if b["status"] == "AVAILABLE"]
    if not rows:
        raise SystemExit(f"{label}: no build succeeded: "
                         + "; ".join(f"{b['build_id']}: {b['reason']}" for b in results))
    lambda_s = sum(i["ms"] for i in invocations) / 1000
    return {"label": label, "concurrent": len(names), "wall_s": round(wall, 2),
            "failed": len(results) - len(rows),
            "load_1min_before": round(load_before, 2),
            "load_1min_after": round(os.getloadavg()[0], 2),
            **summary(rows), "lambda_runtime": {
                **runtime_counts(invocations, len(names)),
                "cold_starts": probe.spawned() - spawned,
                # Lambda-seconds per wall second: how many invocations ran at once, on
                # average, on this machine's cores.
                "mean_concurrent_invocations": round(lambda_s / wall, 2)}}


def cost(transitions: float, invocations: float, gb_seconds: float) -> dict[str, float]:
    return {"step_functions_usd": round(transitions * PRICE_TRANSITION, 6),
            "lambda_requests_usd": round(invocations * PRICE_REQUEST, 8),
            "lambda_compute_usd": round(gb_seconds * PRICE_GB_SECOND, 7),
            "total_usd": round(transitions * PRICE_TRANSITION + invocations * PRICE_REQUEST
                               + gb_seconds * PRICE_GB_SECOND, 6)}


def main(single_runs: int, concurrent: int) -> dict[str, Any]:
    total = 2 * single_runs + concurrent
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="amiforge-bench-") as tmp, \
            LocalCloud(builder_seconds=BUILDER_SECONDS) as cloud:
        os.environ.update(cloud.env())
        aws = AwsContext(region=cloud.region, endpoint_url=cloud.endpoint)
        deploy_started = time.monotonic()
        stack_api.deploy(aws, STACK, LOCAL_STACK_PARAMETERS)
        deploy_s = time.monotonic() - deploy_started
        env = connect(aws, STACK)
        # A generous timeout (1 s per "minute" here): 20 builds on 2 shared cores are slow
        # to be resumed, and a timed-out build would measure nothing.
        write_recipes(Path(tmp), total, timeout_minutes=300)
        recipes = load_recipes(Path(tmp))
        seed_bases(cloud, env, recipes)
        publish(env, recipes, None)
        probe = Probe(cloud)
        names = [r.name for r in sorted(recipes, key=lambda r: int(r.name.split("-")[1]))]
        cold, warm = [], []
        for name in names[:single_runs]:
            assert cloud.runtime is not None
            cloud.runtime.discard_warm()
            cold.append(phase(env, cloud, probe, [name], "1 build, cold"))
        # Each warm build finds the environments the build before it left.
        for name in names[single_runs:2 * single_runs]:
            warm.append(phase(env, cloud, probe, [name], "1 build, warm"))
        many = phase(env, cloud, probe, names[2 * single_runs:], f"{concurrent} builds")

    def med(runs: list[dict[str, Any]], key: str) -> float:
        return round(statistics.median(r[key]["median"] for r in runs), 3)

    per_build = warm[0]
    transitions = per_build["state_transitions"]["median"]
    invocations = per_build["lambda_runtime"]["invocations_per_build"]
    stop_to_image = {"1_build_cold": med(cold, "stop_to_create_image_call_s"),
                     "1_build_warm": med(warm, "stop_to_create_image_call_s"),
                     f"{concurrent}_builds": many["stop_to_create_image_call_s"]["median"]}
    return {
        "benchmark": "pipeline",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                    "load_1_5_15_start": [round(x, 2) for x in load_start],
                    "load_1_5_15_end": [round(x, 2) for x in os.getloadavg()]},
        "method": ("stop = the simulator's 'stopped' emit (wrapped); create_image_call = the "
                   "AMI's creation_date in moto's backend (set inside the CreateImage call); "
                   "create_image_state = TaskStateEntered of CreateImage in the execution "
                   "history (ms resolution); all on this process's wall clock. Transitions = "
                   "*StateEntered history events; Lambda invocations = history "
                   "LambdaFunctionScheduled+TaskScheduled plus EventBridge instance_state "
                   "calls plus SQS cleanup calls carrying the build id, cross-checked "
                   "against the local Lambda runtime's invoke (wrapped). "
                   "Cold = every idle Lambda environment discarded before the build."),
        "builder_seconds": BUILDER_SECONDS, "deploy_s": round(deploy_s, 1),
        "stop_to_create_image_s": {
            **{f"{k}_median": v for k, v in stop_to_image.items()},
            f"{concurrent}_builds_max": many["stop_to_create_image_call_s"]["max"],
            "target_1_build": 2.0, f"target_{concurrent}_builds": 5.0,
            "target_met": {k: v < (2.0 if k.startswith("1_") else 5.0)
                           for k, v in stop_to_image.items()}},
        "overhead_minus_builder_seconds_s": {
            "1_build_cold_median": med(cold, "overhead_minus_builder_seconds_s"),
            "1_build_warm_median": med(warm, "overhead_minus_builder_seconds_s"),
            f"{concurrent}_builds_median":
                many["overhead_minus_builder_seconds_s"]["median"]},
        f"{concurrent}_builds_local_load": {
            "cold_starts": many["lambda_runtime"]["cold_starts"],
            "invocations": round(many["lambda_runtime"]["invocations_per_build"] * concurrent),
            "mean_concurrent_invocations": many["lambda_runtime"]["mean_concurrent_invocations"],
            "cpus": os.cpu_count()},
        "per_build": {"state_transitions": transitions,
                      "lambda_invocations_history_events_sqs":
                          per_build["lambda_invocations"]["median"],
                      "lambda_invocations_runtime": invocations,
                      "invocations_stop_to_create_image":
                          per_build["invocations_stop_to_create_image"]["median"],
                      "lambda_invocations_by_handler": per_build["lambda_runtime"][
                          "by_handler"],
                      "aws_cost_estimate_no_image_polls": cost(
                          transitions, invocations,
                          statistics.median(r["lambda_runtime"]["gb_seconds_per_build"]
                                            for r in warm))},
        "phases": cold + warm + [many],
    }


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:3]]
    print(json.dumps(main(*(arguments + [3, 20][len(arguments):])), indent=2))
