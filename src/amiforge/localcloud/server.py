"""The local cloud: moto's server on loopback, extended with what moto lacks.

:class:`LocalCloud` serves moto's WSGI app (the one ``ThreadedMotoServer`` runs) on
``127.0.0.1``, over connections that stay open (:mod:`.http_server`), and, for as long as
it runs, in this process:

* checks that moto is the version the local cloud was written for
  (:data:`~amiforge.localcloud.fills.MOTO_VERSION`), then installs the fills of moto
  (:data:`~amiforge.localcloud.fills.services.REGISTRY`: one module per service under
  :mod:`.fills`, each fill fingerprinted) — a mismatch refuses to start, in one line;
* switches on Step Functions executing real ASL (moto's ``execute_state_machine``), its
  Retry waits multiplied by ``retry_scale`` (1: real time; :mod:`.fills.sfn_retry`);
* attaches the subprocess Lambda runtime (:mod:`.lambda_runtime`), with warm execution
  environments (``warm_lambdas=False``: a fresh process for every invocation), and the
  SQS poller (:mod:`.sqs_poller`);
* EventBridge delivery to Lambda and Step Functions targets (:mod:`.events`) and a
  ticking scheduler (:mod:`.schedules`);
* the build-instance simulator (:mod:`.ec2_sim`) and the image simulator
  (:mod:`.image_sim`: images pending for ``image_pending_seconds``, then available or
  failed, with EC2's AMI state-change events);
* private routes (:mod:`.private_routes`), ``/_amiforge/release-base``, ``health`` and
  ``faults``, so ``amiforge local release-base`` can play a vendor from another process;
* fault injection (:mod:`.faults`): throttling and 5xx on the functions' AWS calls,
  lost EventBridge deliveries, functions killed mid-step.

:meth:`LocalCloud.stop` undoes all of it: every fill is removed, moto's settings are put
back. moto keeps its state in module globals, so there is one LocalCloud per process at a
time; starting one wipes moto's state.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import datetime
from typing import Any

from amiforge.localcloud import (
    ec2_sim,
    events,
    faults,
    image_sim,
    images,
    lambda_runtime,
)
from amiforge.localcloud.fills import check_moto_version, sfn_retry
from amiforge.localcloud.private_routes import PrivateRoutes
from amiforge.localcloud.schedules import Scheduler
from amiforge.localcloud.sqs_poller import Poller

log = logging.getLogger(__name__)

DEFAULT_ACCOUNT = "123456789012"
_current: LocalCloud | None = None
_current_lock = threading.Lock()


def reset_moto() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


# moto's settings the local cloud needs while it runs: (service, key) -> value.
_MOTO_CONFIG = {
    ("stepfunctions", "execute_state_machine"): True,  # run real ASL
    # With use_docker False moto never calls _invoke_lambda (it echoes canned answers).
    ("lambda", "use_docker"): True,
}


def _set_moto_config(values: dict[tuple[str, str], Any]) -> dict[tuple[str, str], Any]:
    """Set moto's user config; returns the values it had."""
    from moto.core.config import default_user_config

    config: Any = default_user_config
    before = {key: config[key[0]].get(key[1]) for key in values}
    for (service, name), value in values.items():
        config[service][name] = value
    return before


class LocalCloud:
    """All of amiforge's AWS, offline, on ``http://127.0.0.1:PORT``. See the module doc."""

    def __init__(self, port: int = 0, region: str = "us-east-1", time_scale: float = 1.0,
                 builder_seconds: float = 2.0, fault_rate: float = 0.0, *,
                 warm_lambdas: bool = True, event_drop_rate: float = 0.0,
                 crash_rate: float = 0.0, fault_seed: int | None = None,
                 lambda_concurrency: int | None = None,
                 lambda_idle_seconds: float = lambda_runtime.DEFAULT_IDLE_SECONDS,
                 lambda_fork_server: bool = True, image_pending_seconds: float = 0.0) -> None:
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
        self.images = image_sim.ImageSimulator(self._emit_ami_state,
                                               pending_seconds=image_pending_seconds,
                                               fail=self.faults.fail_image)
        self.scheduler = Scheduler(events.deliver, time_scale=time_scale)
        self.runtime: lambda_runtime.LambdaRuntime | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._previous_moto_port: str | None = None
        self._moto_config: dict[tuple[str, str], Any] | None = None
        self._poller: Poller | None = None
        self._fills_installed = False

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
    def retry_scale(self) -> float:
        """Multiplies Step Functions' Retry waits (settable; 1, the default, is as on AWS).
        Every attempt is still made: only the sleeps between attempts shrink."""
        return sfn_retry.retry_scale()

    @retry_scale.setter
    def retry_scale(self, scale: float) -> None:
        sfn_retry.set_retry_scale(scale)

    @property
    def builder_seconds(self) -> float:
        return self.simulator.builder_seconds

    @builder_seconds.setter
    def builder_seconds(self, seconds: float) -> None:
        self.simulator.builder_seconds = seconds

    @property
    def image_pending_seconds(self) -> float:
        """How long a new image (CreateImage, CopyImage) stays pending (settable)."""
        return self.images.pending_seconds

    @image_pending_seconds.setter
    def image_pending_seconds(self, seconds: float) -> None:
        self.images.pending_seconds = seconds

    def env(self) -> dict[str, str]:
        """What a process needs to talk to this cloud."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": self.region}

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> LocalCloud:
        global _current
        check_moto_version()  # before anything: the fills are written for one moto
        with _current_lock:
            if _current is not None:
                raise RuntimeError("a LocalCloud is already running in this process "
                                   "(moto's state is global); stop it first")
            _current = self
        try:
            self._start()
        except BaseException:
            self._undo_start()
            with _current_lock:
                _current = None
            raise
        return self

    def _start(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            create_backend_app,
        )

        from amiforge.localcloud.fills.dispatch import serialised
        from amiforge.localcloud.fills.services import REGISTRY
        from amiforge.localcloud.http_server import Server

        # moto's ASL interpreter logs every failed Task state at ERROR, with the repr of its
        # internal objects, even when a Catch handles it (every failed build, by design).
        # The execution history records the failure; the function's log says why.
        logging.getLogger(_MOTO_ASL_ERRORS).setLevel(logging.CRITICAL)
        _check_port_free(self.requested_port)
        REGISTRY.install()  # refuses a moto whose code is not what a fill was written for
        self._fills_installed = True
        self._moto_config = _set_moto_config(_MOTO_CONFIG)
        app = PrivateRoutes(
            self.faults.middleware(DomainDispatcherApplication(serialised(create_backend_app))),
            self)
        self._server = Server(self.requested_port, app)
        self._server.prepare()
        self.port = self._server.port
        self._previous_moto_port = os.environ.get("MOTO_PORT")
        os.environ["MOTO_PORT"] = str(self.port)
        reset_moto()
        self.runtime = lambda_runtime.LambdaRuntime(self.endpoint, warm=self.warm_lambdas,
                                                    max_concurrency=self.lambda_concurrency,
                                                    idle_seconds=self.lambda_idle_seconds,
                                                    fork_server=self.lambda_fork_server)
        lambda_runtime.attach(self.runtime)
        events.set_drop_filter(self.faults.drop_delivery)
        ec2_sim.attach(self.simulator)
        image_sim.attach(self.images)
        self._poller = Poller()
        self._poller.start()
        self._thread = threading.Thread(target=self._server.serve,
                                        name="amiforge-localcloud", daemon=True)
        self._thread.start()
        self.scheduler.start()
        self.simulator.start()
        self.images.start()
        log.info("local cloud listening on %s (%s)", self.endpoint, self.region)

    def stop(self) -> None:
        global _current
        if self._server is None:
            return
        self.scheduler.stop()
        sfn_retry.set_retry_scale(1.0)
        self.simulator.stop()
        self.images.stop()
        self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._undo_start()
        with _current_lock:
            _current = None

    def _undo_start(self) -> None:
        """Everything start did, undone (as far as it got): moto is as it was."""
        from amiforge.localcloud.fills.services import REGISTRY

        if self._poller is not None:
            self._poller.stop()
            self._poller = None
        if self._server is not None:
            self._server.stop()  # nothing after a first stop
            self._server = None
        lambda_runtime.attach(None)
        events.set_drop_filter(None)
        ec2_sim.attach(None)
        image_sim.attach(None)
        if self._fills_installed:  # not another's install, after a refused start
            REGISTRY.uninstall()
            self._fills_installed = False
        if self._moto_config is not None:
            _set_moto_config(self._moto_config)
            self._moto_config = None
        if self.runtime is not None:
            self.runtime.close()
            self.runtime = None
        if self.port:
            if self._previous_moto_port is None:
                os.environ.pop("MOTO_PORT", None)
            else:
                os.environ["MOTO_PORT"] = self._previous_moto_port
        self.port = 0

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Wipe every resource (moto's state, the simulator's, the schedules')."""
        reset_moto()
        self.simulator.reset()
        self.images.reset()
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


    def _emit_ami_state(self, account: str, region: str, image_id: str, state: str,
                        reason: str) -> None:
        events.put_event(account, region, "aws.ec2", image_sim.DETAIL_TYPE,
                         {"RequestId": str(uuid.uuid4()), "ImageId": image_id,
                          "State": state, "ErrorReason": reason},
                         [image_sim.image_arn(region, image_id)])


_MOTO_ASL_ERRORS = "moto.stepfunctions.parser.asl.component.eval_component"


def _check_port_free(port: int) -> None:
    """Raise OSError (EADDRINUSE) for a port another program holds, before anything is
    started or patched."""
    if not port:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        probe.bind(("127.0.0.1", port))
