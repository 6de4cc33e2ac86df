"""Fault injection: the local cloud as an API that throttles, loses events and kills code.

Three knobs, settable while the cloud runs (:meth:`FaultInjector.configure`), all off by
default, each counted (:meth:`FaultInjector.stats`) so a test or a benchmark can state
what it survived:

``fault_rate``
    The share of AWS calls *made by amiforge's functions* that fail: EC2 answers
    ``RequestLimitExceeded`` (503), JSON services (DynamoDB, Step Functions, SSM, SQS)
    ``ThrottlingException`` (400), query services (SNS, CloudFormation) ``Throttling``
    (400); a quarter of the faults (``server_error_share``) are a 500
    ``InternalError``/``InternalFailure`` instead. The answer is the service's own wire
    format, served by :meth:`FaultInjector.middleware` (a WSGI layer in front of moto),
    so botocore parses it as it would AWS's and its real retry logic (standard mode,
    see :mod:`amiforge.aws.session`) backs off and retries. A faulted call never reaches
    moto: it has no effect, as with a throttled call on AWS.
``event_drop_rate``
    The share of EventBridge deliveries (state-change events, schedule ticks) that are
    silently lost (:func:`amiforge.localcloud.events.set_drop_filter`);
    ``event_drop_sources`` limits it to events of those sources (``aws.ec2``: only
    state-change events are lost, schedules still tick).
``crash_rate``
    The share of function invocations whose process is killed right after their first
    state-changing AWS call took effect (RunInstances, CreateImage, PutItem, ...): the
    side effect happened, the function never learnt it, and Lambda reports
    ``Runtime.ExitError``. This is the case idempotent steps exist for.
    ``crash_functions`` limits it to the functions it names.
``image_fail_rate``
    The share of new images (CreateImage, CopyImage) that end ``failed`` instead of
    ``available`` once their pending time is over (:mod:`.image_sim`), as an image whose
    snapshot failed does on AWS; ``image_fail_kinds`` limits it to ``create`` or
    ``copy``. 1.0 fails every one: a directive, not only a dice roll.

Which calls are the functions'? The local Lambda runtime runs every function with
``AWS_EXECUTION_ENV`` set (as AWS's does), so botocore puts ``exec-env/AWS_Lambda_...``
in its User-Agent; and it gives each execution environment an ``AWS_SDK_UA_APP_ID``
marker (``app/lc-fn-<id>``), by which the injector finds the process to kill. amiforge's
code does nothing special: calls from the CLI, tests and the emulator's own Step
Functions are never faulted.

Calls are also recorded: every function call by operation, SDK retries (botocore's
``amz-sdk-request: attempt=N`` header, N > 1), and the time of every RunInstances, so
the launch rate can be judged against EC2's bucket (:meth:`FaultInjector.run_instances`).
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from amiforge.core import ratelimit
from amiforge.localcloud.fault_responses import (
    Call,
    describe_call,
    disabled_region_response,
    error_response,
)

FUNCTION_MARK = "exec-env/AWS_Lambda_"
SERVER_ERROR_SHARE = 0.25
KNOBS = ("fault_rate", "event_drop_rate", "event_drop_sources", "crash_rate",
         "crash_functions", "server_error_share", "seed", "disabled_regions",
         "image_fail_rate", "image_fail_kinds")
IMAGE_KINDS = ("create", "copy")
# The region of a SigV4 request: Credential=KEY/DATE/REGION/SERVICE/aws4_request.
_SCOPE_REGION = re.compile(r"Credential=[^/]+/[^/]+/([^/]+)/")
_REGION_NAME = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")

StartResponse = Callable[..., Any]


@dataclass
class RunInstancesCall:
    at: float                # time.time() when the request arrived
    function: str
    outcome: str             # executed | faulted


@dataclass
class _Counters:
    function_calls: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)          # "kind:Operation"
    sdk_retries: Counter[str] = field(default_factory=Counter)
    crashes: Counter[str] = field(default_factory=Counter)         # function name
    failed_images: Counter[str] = field(default_factory=Counter)   # create | copy
    deliveries: Counter[str] = field(default_factory=Counter)      # event source
    drops: Counter[str] = field(default_factory=Counter)           # event source
    run_instances: list[RunInstancesCall] = field(default_factory=list)
    # "function|calls", "function|faults", "function|sdk_retries": the same counts per
    # function, so a test can read its own function's figures while other functions
    # (a deployed stack's schedules) share the cloud.
    by_function: Counter[str] = field(default_factory=Counter)


def _check_rate(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value}")
    return value


def _names(name: str, values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise ValueError(f"{name} must be a list of names, got the string {values!r}")
    return tuple(str(v) for v in values)


class FaultInjector:
    """The knobs, the dice and the counters. ``runtime()`` returns the Lambda runtime
    (for :meth:`~amiforge.localcloud.lambda_runtime.LambdaRuntime.first_mutation` and
    ``crash``), or None when none runs."""

    def __init__(self, runtime: Callable[[], Any], *, fault_rate: float = 0.0,
                 event_drop_rate: float = 0.0, crash_rate: float = 0.0,
                 seed: int | None = None) -> None:
        self._runtime = runtime
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.fault_rate = 0.0
        self.event_drop_rate = 0.0
        self.event_drop_sources: tuple[str, ...] = ()  # () : every source
        self.crash_rate = 0.0
        self.crash_functions: tuple[str, ...] = ()  # () : every function
        self.image_fail_rate = 0.0
        self.image_fail_kinds: tuple[str, ...] = IMAGE_KINDS
        self.server_error_share = SERVER_ERROR_SHARE
        # Regions that answer as a region not enabled for the account does (every caller).
        self.disabled_regions: tuple[str, ...] = ()
        self.configure(fault_rate=fault_rate, event_drop_rate=event_drop_rate,
                       crash_rate=crash_rate)
        self._counters = _Counters()

    # -- knobs -----------------------------------------------------------------------

    def configure(self, *, fault_rate: float | None = None,
                  event_drop_rate: float | None = None,
                  event_drop_sources: Iterable[str] | None = None,
                  crash_rate: float | None = None,
                  crash_functions: Iterable[str] | None = None,
                  server_error_share: float | None = None,
                  seed: int | None = None,
                  disabled_regions: Iterable[str] | None = None,
                  image_fail_rate: float | None = None,
                  image_fail_kinds: Iterable[str] | None = None) -> dict[str, Any]:
        """Change any knob (None: keep it); returns the knobs as they were before.
        All or nothing: a bad value (ValueError) changes no knob."""
        rates = {name: _check_rate(name, rate) for name, rate in (
            ("fault_rate", fault_rate), ("event_drop_rate", event_drop_rate),
            ("crash_rate", crash_rate), ("server_error_share", server_error_share),
            ("image_fail_rate", image_fail_rate))
            if rate is not None}
        names = {name: _names(name, value) for name, value in (
            ("event_drop_sources", event_drop_sources), ("crash_functions", crash_functions))
            if value is not None}
        if disabled_regions is not None:
            disabled = tuple(disabled_regions)
            bad = [r for r in disabled if not isinstance(r, str) or not _REGION_NAME.fullmatch(r)]
            if isinstance(disabled_regions, str) or bad:
                raise ValueError(f"disabled_regions must be a list of region names, got "
                                 f"{disabled_regions!r}")
            names["disabled_regions"] = disabled
        if image_fail_kinds is not None:
            kinds = _names("image_fail_kinds", image_fail_kinds)
            unknown = [k for k in kinds if k not in IMAGE_KINDS]
            if unknown:
                raise ValueError(f"image_fail_kinds: unknown kind {unknown[0]!r}; use "
                                 f"{' and/or '.join(IMAGE_KINDS)}")
            names["image_fail_kinds"] = kinds
        with self._lock:
            before = self.knobs()
            for name, value in {**rates, **names}.items():
                setattr(self, name, value)
            if seed is not None:
                self._random.seed(seed)
        return before

    def knobs(self) -> dict[str, Any]:
        return {"fault_rate": self.fault_rate, "event_drop_rate": self.event_drop_rate,
                "event_drop_sources": list(self.event_drop_sources),
                "crash_rate": self.crash_rate, "crash_functions": list(self.crash_functions),
                "server_error_share": self.server_error_share,
                "disabled_regions": list(self.disabled_regions),
                "image_fail_rate": self.image_fail_rate,
                "image_fail_kinds": list(self.image_fail_kinds)}

    def _roll(self, rate: float) -> bool:
        if rate <= 0.0:
            return False
        with self._lock:
            return self._random.random() < rate

    # -- counters --------------------------------------------------------------------

    def reset_stats(self) -> None:
        with self._lock:
            self._counters = _Counters()

    def stats(self) -> dict[str, Any]:
        """Everything counted since the start (or :meth:`reset_stats`), JSON-ready."""
        with self._lock:
            c = self._counters
            kinds: Counter[str] = Counter()
            for key, count in c.faults.items():
                kinds[key.split(":", 1)[0]] += count
            per_function: dict[str, dict[str, int]] = {}
            for key, count in c.by_function.items():
                function, metric = key.rsplit("|", 1)
                per_function.setdefault(
                    function, {"calls": 0, "faults": 0, "sdk_retries": 0})[metric] = count
            return {
                "knobs": self.knobs(),
                "function_calls": sum(c.function_calls.values()),
                "faults": {"total": sum(c.faults.values()), **dict(sorted(kinds.items())),
                           "by_operation": dict(sorted(c.faults.items()))},
                "sdk_retries": sum(c.sdk_retries.values()),
                "crashes": {"total": sum(c.crashes.values()),
                            "by_function": dict(sorted(c.crashes.items()))},
                "events": {"delivered": sum(c.deliveries.values()),
                           "dropped": sum(c.drops.values()),
                           "dropped_by_source": dict(sorted(c.drops.items()))},
                "run_instances": len(c.run_instances),
                "failed_images": dict(sorted(c.failed_images.items())),
                "by_function": dict(sorted(per_function.items())),
            }

    def run_instances(self, function_prefix: str = "") -> list[RunInstancesCall]:
        """RunInstances calls by functions whose name starts with ``function_prefix``."""
        with self._lock:
            return [call for call in self._counters.run_instances
                    if call.function.startswith(function_prefix)]

    def run_instances_report(self, function_prefix: str = "") -> dict[str, Any]:
        """The RunInstances calls that EC2 executed, judged against EC2's bucket."""
        calls = self.run_instances(function_prefix)
        executed = [c.at for c in calls if c.outcome == "executed"]
        span = (max(executed) - min(executed)) if len(executed) > 1 else 0.0
        return {
            "calls": len(calls),
            "executed": len(executed),
            "peak_in_any_second": ratelimit.peak_in_window(executed, 1.0),
            "mean_per_second": round(len(executed) / span, 2) if span else None,
            "span_seconds": round(span, 2),
            "ec2_bucket": {"burst": ratelimit.EC2_RUN_INSTANCES_BURST,
                           "per_second": ratelimit.EC2_RUN_INSTANCES_PER_SECOND},
            "would_be_throttled_by_ec2": ratelimit.bucket_violations(
                executed, burst=ratelimit.EC2_RUN_INSTANCES_BURST,
                per_second=ratelimit.EC2_RUN_INSTANCES_PER_SECOND),
        }

    # -- images ----------------------------------------------------------------------

    def fail_image(self, kind: str) -> bool:
        """For the image simulator: True makes this new image (``create``/``copy``) fail."""
        failed = kind in self.image_fail_kinds and self._roll(self.image_fail_rate)
        if failed:
            with self._lock:
                self._counters.failed_images[kind] += 1
        return failed

    # -- EventBridge -----------------------------------------------------------------

    def drop_delivery(self, rule: Any, target: dict[str, Any], event: dict[str, Any]) -> bool:
        """For :func:`events.set_drop_filter`: True loses this delivery."""
        source = str(event.get("source", "?"))
        eligible = not self.event_drop_sources or source in self.event_drop_sources
        dropped = eligible and self._roll(self.event_drop_rate)
        with self._lock:
            (self._counters.drops if dropped else self._counters.deliveries)[source] += 1
        return dropped

    # -- the WSGI layer --------------------------------------------------------------

    def middleware(self, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
                   ) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
        def faulty(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            if self.disabled_regions:
                scope = _SCOPE_REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
                if scope and scope.group(1) in self.disabled_regions:
                    status, headers, body = disabled_region_response(describe_call(environ))
                    start_response(status, headers)
                    return [body]
            if FUNCTION_MARK not in environ.get("HTTP_USER_AGENT", ""):
                return app(environ, start_response)
            call = describe_call(environ)
            return self._handle(app, call, environ, start_response)

        return faulty

    def _handle(self, app: Callable[..., Iterable[bytes]], call: Call,
                environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        function = self._function_of(call)
        key = f"{call.service}:{call.operation}"
        with self._lock:
            self._counters.function_calls[key] += 1
            self._counters.by_function[f"{function}|calls"] += 1
            if call.attempt > 1:
                self._counters.sdk_retries[key] += 1
                self._counters.by_function[f"{function}|sdk_retries"] += 1
        if self._roll(self.fault_rate):
            server_error = self._roll(self.server_error_share)
            kind = "server_error" if server_error else "throttling"
            with self._lock:
                self._counters.faults[f"{kind}:{call.operation}"] += 1
                self._counters.by_function[f"{function}|faults"] += 1
                if call.operation == "RunInstances":
                    self._counters.run_instances.append(
                        RunInstancesCall(time.time(), function, "faulted"))
            status, headers, body = error_response(call, server_error=server_error)
            start_response(status, headers)
            return [body]
        arrived = time.time()
        result = app(environ, start_response)  # moto has now done what was asked
        if call.operation == "RunInstances":
            with self._lock:
                self._counters.run_instances.append(
                    RunInstancesCall(arrived, function, "executed"))
        if call.mutating and call.environment and self.crash_rate > 0:
            self._maybe_crash(call)
        return result

    def _function_of(self, call: Call) -> str:
        runtime = self._runtime()
        if runtime is None or not call.environment:
            return "?"
        return runtime.function_of(call.environment) or "?"

    def _maybe_crash(self, call: Call) -> None:
        runtime = self._runtime()
        if runtime is None or call.environment is None:
            return
        function = runtime.first_mutation(call.environment)
        if function is None or (self.crash_functions and function not in self.crash_functions):
            return
        if not self._roll(self.crash_rate):
            return
        if runtime.crash(call.environment):
            with self._lock:
                self._counters.crashes[function] += 1
