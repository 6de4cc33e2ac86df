"""The build-instance simulator: plays the EC2 instance a build launches.

moto starts every instance ``running`` and leaves it there, emits no state-change
events, and answers ``GetConsoleOutput`` with canned text. For instances tagged
``amiforge:role=builder`` the :class:`BuilderSimulator` thread instead takes the instance
``pending`` -> ``running`` (after ``running_after`` s) -> ``stopping`` -> ``stopped`` (at
``builder_seconds``), or ``shutting-down`` -> ``terminated`` when its
``InstanceInitiatedShutdownBehavior`` is ``terminate``. Each transition really changes the
moto instance (``describe_instances`` shows it; a stopped one can be imaged) and emits
AWS's "EC2 Instance State-change Notification" on the default bus of its region.

What the build does is read from its user data (:mod:`.builder_script`):

* Linux user data (no ``<powershell>``) is checked with ``bash -n``, and so is the
  recipe's own script inside amiforge's wrapper (:func:`amiforge.core.userdata.
  extract_user_script`; the wrapper keeps it in a quoted heredoc that ``bash -n`` of the
  whole would not parse); a syntax error fails the build with bash's message in the
  console and ``AMIFORGE-RESULT: failure exit=2``;
* a line ``# amiforge-sim: fail`` fails it (exit 1); ``hang`` keeps it running forever;
  ``flaky`` fails the first launch of each build (tag ``amiforge:build-id``; without
  one, of the recipe, tag ``amiforge:recipe``), so every build of a flaky recipe needs
  its retry, however often the recipe was built before;
  ``crash`` never reaches running: ``pending`` -> ``shutting-down`` -> ``terminated``
  with the state reason ``Server.InternalError`` (AWS's "internal error on launch");
* otherwise it succeeds: ``AMIFORGE-RESULT: success``;
* with ``build.files``, the builder fetches them from the local cloud's S3 when it boots
  (:mod:`.builder_files`): a failed fetch fails the build, and ``# amiforge-sim:
  require PATH TEXT`` fails it unless the fetched file PATH contains TEXT;
* ``# amiforge-sim: slow N`` (with any of the above) makes this builder run N seconds
  instead of ``builder_seconds``, so a test can make one build finish after another.

The console (:meth:`BuilderSimulator.console`) gets boot lines when the instance runs and
the script's simulated output plus the marker line when it finishes; ``get_console_output``
answers it (base64, as AWS) through :mod:`.fills.ec2`. Stopping, terminating or starting any instance
through the API also emits the state-change events AWS would (moto emits none).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from amiforge.localcloud.builder_files import with_files
from amiforge.localcloud.builder_script import (
    SCRIPT_PATH,
    Outcome,
    decode_user_data,
    plan_outcome,
)

log = logging.getLogger(__name__)

ROLE_TAG = "amiforge:role"
# Builders, and testers (the test phase's instances of the new image): same lifecycle,
# same `# amiforge-sim:` directives read from their user data.
SIMULATED_ROLES = frozenset({"builder", "tester"})
RECIPE_TAG = "amiforge:recipe"
BUILD_ID_TAG = "amiforge:build-id"
DETAIL_TYPE = "EC2 Instance State-change Notification"
_STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
                "stopping": 64, "stopped": 80}

Emit = Callable[[str, str, str, str], None]  # account, region, instance id, state


@dataclass
class _Build:
    account: str
    region: str
    instance: Any
    outcome: Outcome
    windows: bool
    launched: float
    phase: str = "pending"        # pending | running | finishing | done
    finish_at: float = 0.0
    user_data: str = ""


def instance_tags(instance: Any) -> dict[str, str]:
    tags = getattr(instance.ec2_backend, "tags", {}).get(instance.id)
    if tags is not None:
        return dict(tags)
    return {t["key"]: t["value"] for t in instance.get_tags()}


def instance_arn(account: str, region: str, instance_id: str) -> str:
    return f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"


def set_state(instance: Any, state: str) -> None:
    instance._state.name = state
    instance._state.code = _STATE_CODES[state]


def _stamp(seconds: float) -> str:
    return f"[{seconds:12.6f}]"


class BuilderSimulator:
    """Watches builder instances in every region and plays their lifecycle."""

    def __init__(self, emit: Emit, *, builder_seconds: float = 2.0,
                 running_after: float = 0.2, stopping_seconds: float = 0.1,
                 poll: float = 0.05) -> None:
        self.emit = emit
        self.builder_seconds = builder_seconds
        self.running_after = running_after
        self.stopping_seconds = stopping_seconds
        self.poll = poll
        self._builds: dict[str, _Build] = {}
        self._console: dict[str, list[str]] = {}
        self._recipes_launched: set[str] = set()
        self._known: set[str] = set()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_scan = 0.0

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="amiforge-ec2-sim",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def reset(self) -> None:
        with self._lock:
            self._builds.clear()
            self._console.clear()
            self._recipes_launched.clear()
            self._known.clear()

    def console(self, instance_id: str) -> str | None:
        """The console text of a simulated instance; None if it is not one."""
        with self._lock:
            lines = self._console.get(instance_id)
            return None if lines is None else "".join(line + "\n" for line in lines)

    def is_simulated(self, instance_id: str) -> bool:
        with self._lock:
            return instance_id in self._console

    # -- launches --------------------------------------------------------------------

    def launched(self, instance: Any, account: str, region: str, *,
                 already_running: bool = False) -> None:
        """A builder was launched: hold it ``pending`` and plan what its script does."""
        tags = instance_tags(instance)
        user_data = decode_user_data(instance)
        # As the brief of the simulator says: Windows user data is the kind with <powershell>.
        windows = "<powershell>" in user_data.lower()
        # What "first launch" counts: the build (its attempts share the tag), else the recipe.
        recipe = (tags.get(BUILD_ID_TAG) or tags.get(RECIPE_TAG)
                  or "sha:" + hashlib.sha256(user_data.encode()).hexdigest())
        with self._lock:
            if instance.id in self._known:
                return
            self._known.add(instance.id)
            first = recipe not in self._recipes_launched
            self._recipes_launched.add(recipe)
        outcome = plan_outcome(user_data, windows=windows, first_launch=first)
        build = _Build(account, region, instance, outcome, windows, time.monotonic(),
                       user_data=user_data)
        with self._lock:
            self._builds[instance.id] = build
            self._console[instance.id] = []
            if already_running:
                build.launched -= self.running_after
            else:
                set_state(instance, "pending")
        log.info("builder %s launched (%s): will %s", instance.id, region, outcome.kind)

    def _scan(self) -> None:
        """Adopt builders that did not come through run_instances (e.g. tagged later)."""
        from moto.ec2.models import ec2_backends

        for account, regions in list(ec2_backends.items()):
            for region, backend in list(regions.items()):
                for reservation in list(backend.reservations.values()):
                    for instance in list(reservation.instances):
                        if instance.id in self._known or instance.state != "running":
                            continue
                        if instance_tags(instance).get(ROLE_TAG) in SIMULATED_ROLES:
                            self.launched(instance, account, region, already_running=True)

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                now = time.monotonic()
                if now - self._last_scan > 0.25:
                    self._last_scan = now
                    self._scan()
                self._advance(now)
            except Exception:
                log.exception("builder simulator step failed")

    # -- transitions -----------------------------------------------------------------

    def _advance(self, now: float) -> None:
        with self._lock:
            builds = list(self._builds.values())
        for build in builds:
            instance = build.instance
            # A builder adopted by _scan (in the instant between moto creating it and the
            # run_instances hook seeing it) is still "running" in its pending phase.
            expected = {"pending": {"pending", "running"}, "running": {"running"},
                        "finishing": {"stopping" if self._stops(build) else "shutting-down"}}
            if build.phase in expected and instance.state not in expected[build.phase]:
                # Changed through the API (terminated, stopped): that path emitted events.
                self._forget(build)
                continue
            age = now - build.launched
            if build.phase == "pending" and age >= self.running_after \
                    and build.outcome.kind == "crash":
                self._transition(build, "shutting-down")
                instance.terminate()
                _internal_error(instance)
                self._emit(build, "terminated")
                build.phase = "done"
                self._forget(build)
            elif build.phase == "pending" and age >= self.running_after:
                # Booted: the wrapper fetches build.files before the script runs.
                build.outcome = with_files(build.outcome, build.user_data,
                                           windows=build.windows)
                self._transition(build, "running")
                self._boot_console(build)
                build.phase = "running"
            elif build.phase == "running" and age >= (
                    self.builder_seconds if build.outcome.seconds is None
                    else build.outcome.seconds):
                if build.outcome.kind == "hang":
                    continue
                self._finish_console(build)
                self._transition(build, "stopping" if self._stops(build) else "shutting-down")
                build.phase = "finishing"
                build.finish_at = now + self.stopping_seconds
            elif build.phase == "finishing" and now >= build.finish_at:
                if self._stops(build):
                    instance.stop()
                    final = "stopped"
                else:
                    instance.terminate()
                    final = "terminated"
                _instance_initiated(instance)
                self._emit(build, final)
                build.phase = "done"
                self._forget(build)

    @staticmethod
    def _stops(build: _Build) -> bool:
        return (build.instance.instance_initiated_shutdown_behavior or "stop") != "terminate"

    def _forget(self, build: _Build) -> None:
        with self._lock:
            self._builds.pop(build.instance.id, None)

    def _transition(self, build: _Build, state: str) -> None:
        set_state(build.instance, state)
        self._emit(build, state)

    def _emit(self, build: _Build, state: str) -> None:
        log.info("builder %s is %s", build.instance.id, state)
        self.emit(build.account, build.region, build.instance.id, state)

    def _write(self, build: _Build, lines: list[str]) -> None:
        with self._lock:
            self._console.setdefault(build.instance.id, []).extend(lines)

    def _boot_console(self, build: _Build) -> None:
        when = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
        if build.windows:
            day = datetime.now(UTC).strftime("%Y/%m/%d %H:%M:%SZ")
            lines = [f"{day}: EC2Launch v2 service starting (amiforge local cloud simulation)",
                     f"{day}: Windows sysprep configuration complete.",
                     f"{day}: Message: Windows is Ready to use",
                     f"{day}: Running user data (<powershell>)"]
        else:
            lines = [f"{_stamp(0)} Linux version 6.1.0-amiforge.x86_64 (amiforge local cloud "
                     "simulation)",
                     f"{_stamp(0.4)} Kernel command line: BOOT_IMAGE=/boot/vmlinuz "
                     "root=LABEL=/ console=ttyS0",
                     f"{_stamp(3.1)} cloud-init[1482]: Cloud-init v. 22.2.2 running 'init' at "
                     f"{when}. Up 3.10 seconds.",
                     f"{_stamp(5.2)} cloud-init[1603]: Cloud-init v. 22.2.2 running "
                     f"'modules:final' at {when}. Up 5.20 seconds."]
        prefix = "" if build.windows else f"{_stamp(5.3)} "
        self._write(build, lines + [prefix + line for line in build.outcome.started])

    def _finish_console(self, build: _Build) -> None:
        outcome = build.outcome
        prefix = "" if build.windows else f"{_stamp(6.0)} cloud-init[1603]: "
        lines = [prefix + line for line in outcome.output]
        if outcome.kind == "success":
            lines.append("AMIFORGE-RESULT: success")
        else:
            lines.append(f"AMIFORGE-RESULT: failure exit={outcome.exit_code}")
        if not build.windows:
            if outcome.kind != "success":
                lines.append(f"{_stamp(6.1)} cloud-init[1603]: util.py[WARNING]: Failed "
                             f"running {SCRIPT_PATH} [{outcome.exit_code}]")
            lines.append(f"{_stamp(7.0)} reboot: Power down")
        self._write(build, lines)


def _internal_error(instance: Any) -> None:
    from moto.ec2.models.instances import StateReason

    instance._reason = "Server.InternalError: Internal error on launch"
    instance.state_reason = StateReason("Server.InternalError: Internal error on launch",
                                        "Server.InternalError")


def _instance_initiated(instance: Any) -> None:
    from moto.ec2.models.instances import StateReason

    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    instance._reason = f"Client.InstanceInitiatedShutdown: Instance initiated shutdown ({stamp})"
    instance.state_reason = StateReason(
        "Client.InstanceInitiatedShutdown: Instance initiated shutdown",
        "Client.InstanceInitiatedShutdown")


# -- the simulator moto's EC2 reaches (through the fills in .fills.ec2) --------------

_simulator: BuilderSimulator | None = None


def attach(simulator: BuilderSimulator | None) -> None:
    """Make ``simulator`` the one launches reach (None: moto's own behaviour)."""
    global _simulator
    _simulator = simulator


def attached() -> BuilderSimulator | None:
    return _simulator
