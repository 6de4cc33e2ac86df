"""The build-instance simulator: plays the EC2 instance a build launches.

moto starts every instance ``running`` and leaves it there, emits no state-change
events, and answers ``GetConsoleOutput`` with canned text. For instances tagged
``amiforge:role=builder`` the :class:`BuilderSimulator` thread instead takes the instance
``pending`` -> ``running`` (after ``running_after`` s) -> ``stopping`` -> ``stopped`` (at
``builder_seconds``), or ``shutting-down`` -> ``terminated`` when its
``InstanceInitiatedShutdownBehavior`` is ``terminate``. Each transition really changes the
moto instance (``describe_instances`` shows it; a stopped one can be imaged) and emits
AWS's "EC2 Instance State-change Notification" on the default bus of its region.

What the build does is read from its user data, decoded (base64, gzip, MIME multipart):

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
* ``# amiforge-sim: slow N`` (with any of the above) makes this builder run N seconds
  instead of ``builder_seconds``, so a test can make one build finish after another.

The console (:meth:`BuilderSimulator.console`) gets boot lines when the instance runs and
the script's simulated output plus the marker line when it finishes; ``get_console_output``
is patched to return it (base64, as AWS). Stopping, terminating or starting any instance
through the API also emits the state-change events AWS would (moto emits none).
"""

from __future__ import annotations

import base64
import contextlib
import email
import gzip
import hashlib
import logging
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ROLE_TAG = "amiforge:role"
RECIPE_TAG = "amiforge:recipe"
BUILD_ID_TAG = "amiforge:build-id"
DETAIL_TYPE = "EC2 Instance State-change Notification"
SCRIPT_PATH = "/var/lib/cloud/instance/scripts/part-001"
WRAPPED_SCRIPT_PATH = "/var/lib/amiforge/build-script"  # where amiforge's wrapper puts it
_DIRECTIVE = re.compile(r"^[ \t]*#[ \t]*amiforge-sim:[ \t]*(fail|hang|flaky|crash)\b",
                        re.MULTILINE)
_SLOW = re.compile(r"^[ \t]*#[ \t]*amiforge-sim:[ \t]*slow[ \t]+(\d+(?:\.\d+)?)\b",
                   re.MULTILINE)
_CLOUD_INIT_STARTS = ("#!", "#cloud-config", "#include", "#cloud-boothook", "#part-handler",
                      "#upstart-job", "## template: jinja")
_STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
                "stopping": 64, "stopped": 80}

Emit = Callable[[str, str, str, str], None]  # account, region, instance id, state


@dataclass
class Outcome:
    """What the simulated user script does."""

    kind: str                     # success | fail | hang | crash
    exit_code: int = 0
    output: list[str] = field(default_factory=list)   # written when the script ends
    started: list[str] = field(default_factory=list)  # written when the instance boots
    seconds: float | None = None  # how long it runs (None: the simulator's builder_seconds)


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


def decode_user_data(instance: Any) -> str:
    raw = getattr(instance, "user_data", None)
    if raw is None:
        return ""
    if hasattr(raw, "as_bytes"):
        data = base64.b64decode(raw.as_bytes())  # moto's Base64EncodedString
    else:
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        with contextlib.suppress(ValueError):
            data = base64.b64decode(data, validate=True)
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def _shell_parts(user_data: str) -> list[str]:
    """The shell scripts cloud-init would run from this user data."""
    if user_data.lstrip().lower().startswith("content-type: multipart"):
        message = email.message_from_string(user_data)
        return [str(part.get_payload(decode=True).decode("utf-8", errors="replace"))
                for part in message.walk()
                if part.get_content_type() in ("text/x-shellscript", "text/x-sh")]
    if user_data.lstrip().startswith("#cloud-config"):
        return []
    return [user_data] if user_data.strip() else []


def _bash_like(script: str) -> bool:
    first = script.split("\n", 1)[0]
    if not first.startswith("#!"):
        return True
    return bool(re.search(r"\b(ba)?sh\b", first))


def scripts_to_check(user_data: str) -> list[tuple[str, str]]:
    """(script, path on the instance) bash would parse: each shell part, and the recipe's
    script inside amiforge's wrapper (a quoted heredoc, which ``bash -n`` of the wrapper
    alone does not parse)."""
    from amiforge.core.userdata import extract_user_script

    scripts = []
    for part in _shell_parts(user_data):
        scripts.append((part, SCRIPT_PATH))
        inner = extract_user_script(part)
        if inner and _bash_like(inner):
            scripts.append((inner, WRAPPED_SCRIPT_PATH))
    return scripts


def bash_syntax_error(script: str, shown_as: str = SCRIPT_PATH) -> str | None:
    """bash's message for a syntax error in ``script``, or None if it parses."""
    with tempfile.TemporaryDirectory(prefix="amiforge-sim-") as tmp:
        path = Path(tmp) / "part-001"
        path.write_text(script, encoding="utf-8")
        try:
            result = subprocess.run(["bash", "-n", str(path)], capture_output=True,
                                    text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if result.returncode == 0:
            return None
        return result.stderr.replace(str(path), shown_as).strip() or "syntax error"


def runnable(user_data: str) -> bool:
    """Whether cloud-init (or EC2Launch) would run anything from this user data.

    cloud-init runs user data only in a format it knows by its first bytes; anything
    else (say, user data base64-encoded twice) is logged as unhandled and ignored, and
    the instance boots, runs nothing and never powers off.
    """
    return (user_data.startswith(_CLOUD_INIT_STARTS)
            or user_data.lower().startswith("content-type: multipart")
            or "<powershell>" in user_data.lower())


def plan_outcome(user_data: str, *, windows: bool, first_launch: bool) -> Outcome:
    if not runnable(user_data):
        shown = user_data[:40].encode()
        return Outcome("hang", started=[
            f"cloud-init[1603]: __init__.py[WARNING]: Unhandled non-multipart "
            f"(text/x-not-multipart) userdata: '{shown!r}...'"])
    if not windows:
        for script, shown_as in scripts_to_check(user_data):
            error = bash_syntax_error(script, shown_as)
            if error:
                return Outcome("fail", 2, error.splitlines())
    directive = _DIRECTIVE.search(user_data)
    kind = directive.group(1) if directive else "success"
    slow = _SLOW.search(user_data)
    seconds = float(slow.group(1)) if slow else None
    lines = len(user_data.splitlines())
    ran = f"amiforge-sim: ran the user data ({lines} lines)"
    if kind == "fail" or (kind == "flaky" and first_launch):
        why = "fail" if kind == "fail" else "flaky, first launch"
        return Outcome("fail", 1, [ran, f"amiforge-sim: script exited with status 1 ({why})"],
                       seconds=seconds)
    if kind == "crash":
        return Outcome("crash")
    if kind == "hang":
        return Outcome("hang", started=[
            "amiforge-sim: running the user data; it hangs (never shuts down)"])
    return Outcome("success", 0, [ran], seconds=seconds)


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
        build = _Build(account, region, instance, outcome, windows, time.monotonic())
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
                        if instance_tags(instance).get(ROLE_TAG) == "builder":
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


# -- moto patches --------------------------------------------------------------------

_simulator: BuilderSimulator | None = None
_originals: dict[str, Any] = {}


def _emit_api(backend: Any, instance: Any, *states: str) -> None:
    sim = _simulator
    if sim is None:
        return
    for state in states:
        sim.emit(backend.account_id, backend.region_name, instance.id, state)


def _run_instances(self: Any, *args: Any, **kwargs: Any) -> Any:
    reservation = _originals["run_instances"](self, *args, **kwargs)
    sim = _simulator
    if sim is not None:
        for instance in reservation.instances:
            if instance_tags(instance).get(ROLE_TAG) == "builder":
                sim.launched(instance, self.account_id, self.region_name)
                _emit_api(self, instance, "pending")
            else:
                _emit_api(self, instance, "pending", "running")
    return reservation


def _state_change(name: str, steps: dict[str, tuple[str, ...]]) -> Callable[..., Any]:
    def patched(self: Any, instance_ids: list[str]) -> Any:
        changed = _originals[name](self, instance_ids)
        for instance, previous in changed:
            before = getattr(previous, "name", None)
            if before in steps:
                _emit_api(self, instance, *steps[before])
        return changed

    patched.__name__ = name
    return patched


def _get_console_output(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.ec2.utils import Base64EncodedString

    sim = _simulator
    instance_id = self._get_param("InstanceId")
    instance = self.ec2_backend.get_instance(instance_id)
    text = sim.console(instance.id) if sim is not None else None
    if text is None:
        return _originals["get_console_output"](self)
    result: dict[str, Any] = {"InstanceId": instance.id, "Timestamp": utcnow()}
    if text:
        result["Output"] = Base64EncodedString.from_raw_string(text)
    return ActionResult(result)


def install(simulator: BuilderSimulator | None) -> None:
    """Patch moto's EC2 so launches reach ``simulator`` (None: moto's own behaviour)."""
    global _simulator
    _simulator = simulator
    if _originals:
        return
    from moto.ec2.models.instances import InstanceBackend
    from moto.ec2.responses.general import General

    _originals["run_instances"] = InstanceBackend.run_instances
    _originals["stop_instances"] = InstanceBackend.stop_instances
    _originals["terminate_instances"] = InstanceBackend.terminate_instances
    _originals["start_instances"] = InstanceBackend.start_instances
    _originals["get_console_output"] = General.get_console_output
    live = ("pending", "running")
    InstanceBackend.run_instances = _run_instances  # type: ignore[method-assign]
    InstanceBackend.stop_instances = _state_change(  # type: ignore[method-assign]
        "stop_instances", {s: ("stopping", "stopped") for s in live})
    InstanceBackend.terminate_instances = _state_change(  # type: ignore[method-assign]
        "terminate_instances",
        {s: ("shutting-down", "terminated") for s in (*live, "stopping", "stopped")})
    InstanceBackend.start_instances = _state_change(  # type: ignore[method-assign]
        "start_instances", {"stopped": ("pending", "running")})
    General.get_console_output = _get_console_output  # type: ignore[method-assign]
