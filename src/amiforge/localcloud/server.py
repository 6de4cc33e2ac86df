"""The local cloud: moto's server on loopback, extended with what moto lacks.

:class:`LocalCloud` starts moto's WSGI app (the one ``ThreadedMotoServer`` runs) on
``127.0.0.1`` and switches on, in this process:

* Step Functions executing real ASL (moto's ``execute_state_machine``), its internal
  Lambda client pointed at ``127.0.0.1:PORT`` (moto builds it from ``localhost``);
* the subprocess Lambda runtime (:mod:`.lambda_runtime`), with warm execution
  environments (``warm_lambdas=False``: a fresh process for every invocation);
* EventBridge delivery to Lambda and Step Functions targets (:mod:`.events`) and a
  ticking scheduler (:mod:`.schedules`);
* the build-instance simulator (:mod:`.ec2_sim`);
* CloudFormation custom resources answering FAILED, Update and Delete (:mod:`.cfn_custom`);
* small fills where moto departs from AWS in ways amiforge meets (:mod:`.moto_gaps`), and
  its consumers' stacks meet (:mod:`.cfn_gaps`: SSM parameter types, updates, instances),
  SQS event source mappings as AWS runs them (:mod:`.sqs_gaps`), and StopExecution,
  image deprecation and data-type parameter filters (:mod:`.lifecycle_gaps`), S3's
  ExpectedBucketOwner check (:mod:`.s3_gaps`), and network-interface tags at launch
  (:mod:`.ec2_tag_gaps`);
* a private route, ``POST /_amiforge/release-base`` (and ``GET /_amiforge/health``),
  so ``amiforge local release-base`` can play a vendor from another process;
* fault injection (:mod:`.faults`): throttling and 5xx on the functions' AWS calls,
  lost EventBridge deliveries, functions killed mid-step; ``GET /_amiforge/faults``
  reads its counters, ``POST`` sets its knobs.

moto keeps its state in module globals, so there is one LocalCloud per process at a
time; starting one wipes moto's state.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import socket
import threading
from datetime import datetime
from typing import Any

from amiforge.localcloud import (
    cfn_custom,
    cfn_gaps,
    ec2_sim,
    ec2_tag_gaps,
    events,
    faults,
    images,
    lambda_runtime,
    lifecycle_gaps,
    moto_gaps,
    s3_gaps,
    sqs_gaps,
)
from amiforge.localcloud.schedules import Scheduler

log = logging.getLogger(__name__)

DEFAULT_ACCOUNT = "123456789012"
PRIVATE_PREFIX = "/_amiforge/"
_current: LocalCloud | None = None
_current_lock = threading.Lock()


def _configure_moto(port: int) -> None:
    """moto settings and patches that depend on where the server listens."""
    import moto.settings
    from moto.core.config import default_user_config

    os.environ["MOTO_PORT"] = str(port)
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    # With use_docker False moto never calls _invoke_lambda (it echoes canned answers).
    default_user_config["lambda"]["use_docker"] = True
    # CloudFormation builds the custom-resource ResponseURL from this (Docker's host name).
    moto.settings.moto_server_host = lambda: "http://127.0.0.1"  # type: ignore[assignment]
    _patch_sfn_client(port)
    _patch_sfn_execution_names()


def _patch_sfn_execution_names() -> None:
    """StartExecution without a name gets a UUID, as on AWS (moto's parser uses "None")."""
    import uuid

    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution
    if getattr(original, "_amiforge", False):
        return

    def start_execution(self: Any, state_machine_arn: str, name: Any = None,
                        *args: Any, **kwargs: Any) -> Any:
        return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    start_execution._amiforge = True  # type: ignore[attr-defined]
    StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign]


def _patch_sfn_client(port: int) -> None:
    """Step Functions' own boto3 clients (Lambda tasks, SDK tasks) call 127.0.0.1:PORT."""
    import sys

    import boto3
    from botocore.config import Config
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import (
        TimeoutSeconds,
    )
    from moto.stepfunctions.parser.asl.utils import boto_client
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend  # noqa: F401

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        return boto3.client(
            service_name=service, region_name=region, aws_access_key_id="ak",
            aws_secret_access_key="sk", endpoint_url=f"http://127.0.0.1:{port}",
            config=Config(parameter_validation=False,
                          retries={"max_attempts": 0, "total_max_attempts": 1},
                          connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                          read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS))

    original = getattr(boto_client, "_amiforge_original", boto_client.boto_client_for)
    boto_client._amiforge_original = original  # type: ignore[attr-defined]
    current = boto_client.boto_client_for
    boto_client.boto_client_for = boto_client_for  # type: ignore[assignment]
    # Modules that did `from ... import boto_client_for` hold their own reference.
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions") and module is not None and \
                getattr(module, "boto_client_for", None) in (original, current):
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]


def reset_moto() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


class _PrivateRoutes:
    """WSGI middleware: amiforge's own routes in front of moto's app."""

    def __init__(self, app: Any, cloud: LocalCloud) -> None:
        self.app = app
        self.cloud = cloud

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PRIVATE_PREFIX):
            return self.app(environ, start_response)
        status, body = self._handle(environ, path[len(PRIVATE_PREFIX):])
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"),
                                ("Content-Length", str(len(data)))])
        return [data]

    def _handle(self, environ: dict[str, Any], route: str) -> tuple[str, dict[str, Any]]:
        method = environ.get("REQUEST_METHOD", "GET")
        if route == "health" and method == "GET":
            return "200 OK", {"ok": True, "region": self.cloud.region,
                              "endpoint": self.cloud.endpoint}
        if route == "release-base" and method == "POST":
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                request = json.loads(environ["wsgi.input"].read(length) or b"{}")
                when = request.get("creation_date")
                image_id = self.cloud.release_base(
                    name=request.get("name") or "",
                    owner=request.get("owner") or "amazon",
                    ssm_parameter=request.get("ssm_parameter"),
                    architecture=request.get("architecture") or "x86_64",
                    platform=request.get("platform"),
                    creation_date=datetime.fromisoformat(when) if when else None,
                    region=request.get("region"),
                )
            except (ValueError, TypeError, KeyError) as err:
                return "400 Bad Request", {"error": str(err)}
            return "200 OK", {"image_id": image_id}
        if route == "faults" and method == "GET":
            return "200 OK", self.cloud.faults.stats()
        if route == "faults" and method == "POST":
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                knobs = json.loads(environ["wsgi.input"].read(length) or b"{}")
                if not isinstance(knobs, dict):
                    raise ValueError("send a JSON object of knobs, like {\"fault_rate\": 0.1}")
                unknown = sorted(set(knobs) - set(faults.KNOBS))
                if unknown:  # a typo must not be accepted and silently ignored
                    close = difflib.get_close_matches(unknown[0], faults.KNOBS, n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    raise ValueError(f"unknown fault knob {unknown[0]!r}{hint} (knobs: "
                                     f"{', '.join(faults.KNOBS)})")
                self.cloud.faults.configure(**{k: knobs[k] for k in faults.KNOBS if k in knobs})
            except (ValueError, TypeError) as err:
                return "400 Bad Request", {"error": str(err)}
            return "200 OK", self.cloud.faults.stats()
        return "404 Not Found", {"error": f"no route {method} {PRIVATE_PREFIX}{route}"}


class LocalCloud:
    """All of amiforge's AWS, offline, on ``http://127.0.0.1:PORT``. See the module doc."""

    def __init__(self, port: int = 0, region: str = "us-east-1", time_scale: float = 1.0,
                 builder_seconds: float = 2.0, fault_rate: float = 0.0, *,
                 warm_lambdas: bool = True, event_drop_rate: float = 0.0,
                 crash_rate: float = 0.0, fault_seed: int | None = None,
                 lambda_concurrency: int | None = None,
                 lambda_idle_seconds: float = lambda_runtime.DEFAULT_IDLE_SECONDS,
                 lambda_fork_server: bool = True) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be positive, got {time_scale}")
        if builder_seconds < 0:
            raise ValueError(f"builder_seconds must not be negative, got {builder_seconds}")
        self.requested_port = port
        self.region = region
        # Throttling/5xx on functions' calls, lost events, killed functions: .faults.
        self.faults = faults.FaultInjector(lambda: self.runtime, fault_rate=fault_rate,
                                           event_drop_rate=event_drop_rate,
                                           crash_rate=crash_rate, seed=fault_seed)
        self.warm_lambdas = warm_lambdas
        self.lambda_concurrency = lambda_concurrency
        if lambda_idle_seconds < 0:
            raise ValueError(f"lambda_idle_seconds must not be negative, got "
                             f"{lambda_idle_seconds}")
        self.lambda_idle_seconds = lambda_idle_seconds
        self.lambda_fork_server = lambda_fork_server
        self.account = DEFAULT_ACCOUNT
        self.port = 0
        self.simulator = ec2_sim.BuilderSimulator(self._emit_ec2_state,
                                                  builder_seconds=builder_seconds)
        self.scheduler = Scheduler(events.deliver, time_scale=time_scale)
        self.runtime: lambda_runtime.LambdaRuntime | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._previous_moto_port: str | None = None

    # -- properties ------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        if not self.port:
            raise RuntimeError("the local cloud is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def time_scale(self) -> float:
        """Emulated seconds per real second, for schedules (settable while running)."""
        return self.scheduler.time_scale

    @time_scale.setter
    def time_scale(self, scale: float) -> None:
        self.scheduler.set_time_scale(scale)

    @property
    def fault_rate(self) -> float:
        """Share of functions' AWS calls answered with throttling or a 5xx (settable)."""
        return self.faults.fault_rate

    @fault_rate.setter
    def fault_rate(self, rate: float) -> None:
        self.faults.configure(fault_rate=rate)

    @property
    def builder_seconds(self) -> float:
        return self.simulator.builder_seconds

    @builder_seconds.setter
    def builder_seconds(self, seconds: float) -> None:
        self.simulator.builder_seconds = seconds

    def env(self) -> dict[str, str]:
        """What a process needs to talk to this cloud."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": self.region}

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> LocalCloud:
        global _current
        with _current_lock:
            if _current is not None:
                raise RuntimeError("a LocalCloud is already running in this process "
                                   "(moto's state is global); stop it first")
            _current = self
        try:
            self._start()
        except BaseException:
            with _current_lock:
                _current = None
            raise
        return self

    def _start(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # moto's ASL interpreter logs every failed Task state at ERROR, with the repr of its
        # internal objects, even when a Catch handles it (every failed build, by design).
        # The execution history records the failure; the function's log says why.
        logging.getLogger(_MOTO_ASL_ERRORS).setLevel(logging.CRITICAL)
        _check_port_free(self.requested_port)
        app = _PrivateRoutes(
            self.faults.middleware(DomainDispatcherApplication(create_backend_app)), self)
        self._server = make_server("127.0.0.1", self.requested_port, app, threaded=True,
                                   request_handler=MotoRequestHandler)
        self.port = int(self._server.server_address[1])
        self._previous_moto_port = os.environ.get("MOTO_PORT")
        _configure_moto(self.port)
        moto_gaps.install()
        sqs_gaps.install()
        lifecycle_gaps.install()
        cfn_gaps.install()
        s3_gaps.install()
        ec2_tag_gaps.install()
        cfn_custom.install()
        reset_moto()
        self.runtime = lambda_runtime.LambdaRuntime(self.endpoint, warm=self.warm_lambdas,
                                                    max_concurrency=self.lambda_concurrency,
                                                    idle_seconds=self.lambda_idle_seconds,
                                                    fork_server=self.lambda_fork_server)
        lambda_runtime.install(self.runtime)
        events.install(True)
        events.set_drop_filter(self.faults.drop_delivery)
        ec2_sim.install(self.simulator)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="amiforge-localcloud", daemon=True)
        self._thread.start()
        self.scheduler.start()
        self.simulator.start()
        log.info("local cloud listening on %s (%s)", self.endpoint, self.region)

    def stop(self) -> None:
        global _current
        if self._server is None:
            return
        self.scheduler.stop()
        self.simulator.stop()
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server.server_close()
        self._server = None
        lambda_runtime.install(None)
        events.install(False)
        events.set_drop_filter(None)
        ec2_sim.install(None)
        moto_gaps.uninstall()
        sqs_gaps.uninstall()
        lifecycle_gaps.uninstall()
        cfn_gaps.uninstall()
        s3_gaps.uninstall()
        ec2_tag_gaps.uninstall()
        if self.runtime is not None:
            self.runtime.close()
            self.runtime = None
        if self._previous_moto_port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = self._previous_moto_port
        self.port = 0
        with _current_lock:
            _current = None

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Wipe every resource (moto's state, the simulator's, the schedules')."""
        reset_moto()
        self.simulator.reset()
        self.scheduler.reset()
        if self.runtime is not None:
            self.runtime.discard_warm()

    # -- what the cloud adds ---------------------------------------------------------

    def release_base(self, name: str, owner: str = "amazon", ssm_parameter: str | None = None,
                     architecture: str = "x86_64", platform: str | None = None,
                     creation_date: datetime | None = None, *,
                     region: str | None = None) -> str:
        """Publish a new base AMI as a vendor would; returns its id."""
        return images.release_base(self.account, region or self.region, name, owner=owner,
                                   ssm_parameter=ssm_parameter, architecture=architecture,
                                   platform=platform, creation_date=creation_date)

    def _emit_ec2_state(self, account: str, region: str, instance_id: str,
                        state: str) -> None:
        events.put_event(account, region, "aws.ec2", ec2_sim.DETAIL_TYPE,
                         {"instance-id": instance_id, "state": state},
                         [ec2_sim.instance_arn(account, region, instance_id)])


_MOTO_ASL_ERRORS = "moto.stepfunctions.parser.asl.component.eval_component"


def _check_port_free(port: int) -> None:
    """Raise OSError (EADDRINUSE) for a port another program holds: werkzeug's
    ``make_server`` would print its own advice and ``sys.exit`` instead."""
    if not port:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as werkzeug binds
        probe.bind(("127.0.0.1", port))
