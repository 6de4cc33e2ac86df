"""The image simulator: EC2's images take time, may fail, and announce their state.

moto makes every image ``available`` inside CreateImage and CopyImage and emits no event.
On AWS an image is ``pending`` while its snapshots are taken (minutes, for large volumes
hours), then ``available`` or ``failed``, and EC2 sends an "EC2 AMI State Change" event
(``detail``: ``ImageId``, ``State``, ``ErrorReason``) to the default bus of the image's
region at each change. Here, through the fills in :mod:`.fills.ec2_images`:

* every image CreateImage or CopyImage makes is ``pending`` for ``pending_seconds`` (real
  seconds; the local stack's ``SecondsPerMinute=1`` makes that many "minutes"), then
  ``available``; with ``pending_seconds`` 0 (the default, so tests stay fast) it is
  available before the call returns, as moto had it, and its events are still sent;
* the fault injector's ``image_fail_rate`` (:mod:`.faults`; ``image_fail_kinds`` limits
  it to ``create`` or ``copy``) makes an image end ``failed`` instead, with a
  ``StateReason`` and the event's ``ErrorReason``;
* an image deregistered while pending is forgotten (no late "available");
* :meth:`ImageSimulator.finish_now` ends one image's pending time at once, so a test can
  hold an image pending for as long as it needs and no longer depend on the clock.

The events go through :func:`amiforge.localcloud.events.put_event`, so every rule of the
region's default bus sees them, as on AWS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

DETAIL_TYPE = "EC2 AMI State Change"
FAILURE_REASON = "Client.SnapshotCreationFailed: snapshot creation failed (simulated)"

Emit = Callable[[str, str, str, str, str], None]   # account, region, image id, state, reason
FailRoll = Callable[[str], bool]                    # kind (create | copy) -> fail it?


@dataclass
class _Pending:
    account: str
    region: str
    ami: Any
    backend: Any
    due: float
    fail: bool


def image_arn(region: str, image_id: str) -> str:
    return f"arn:aws:ec2:{region}::image/{image_id}"


class ImageSimulator:
    """Holds new images ``pending`` and finishes them on a thread of its own."""

    def __init__(self, emit: Emit, *, pending_seconds: float = 0.0,
                 fail: FailRoll | None = None, poll: float = 0.05) -> None:
        self.emit = emit
        self.pending_seconds = pending_seconds
        self.fail = fail or (lambda _kind: False)
        self.poll = poll
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def pending_seconds(self) -> float:
        return self._pending_seconds

    @pending_seconds.setter
    def pending_seconds(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"image_pending_seconds must not be negative, got {seconds}")
        self._pending_seconds = float(seconds)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="amiforge-image-sim",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def reset(self) -> None:
        with self._lock:
            self._pending.clear()

    def pending(self) -> list[str]:
        """The ids of the images still pending."""
        with self._lock:
            return sorted(self._pending)

    def finish_now(self, image_id: str) -> bool:
        """End ``image_id``'s pending time now, as if its snapshots were done: it becomes
        ``available`` (or ``failed``, as rolled) and its event is sent before this returns.
        False if it is not pending. Lets a test hold an image pending for as long as it
        needs, however slow the machine, then finish it at a moment it chooses."""
        with self._lock:
            entry = self._pending.pop(image_id, None)
        if entry is None:
            return False
        self._finish(entry)
        return True

    def created(self, backend: Any, ami: Any, kind: str) -> None:
        """CreateImage (``kind`` create) or CopyImage (copy) made ``ami`` in ``backend``."""
        account, region = str(backend.account_id), str(backend.region_name)
        entry = _Pending(account, region, ami, backend,
                         time.monotonic() + self.pending_seconds, self.fail(kind))
        ami.state = "pending"
        self._emit(entry, "pending")
        if self.pending_seconds <= 0:
            self._finish(entry)
            return
        with self._lock:
            self._pending[ami.id] = entry

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            now = time.monotonic()
            with self._lock:
                due = [e for e in self._pending.values() if e.due <= now]
                for entry in due:
                    self._pending.pop(entry.ami.id, None)
            for entry in due:
                try:
                    self._finish(entry)
                except Exception:
                    log.exception("image simulator: finishing %s failed", entry.ami.id)

    def _finish(self, entry: _Pending) -> None:
        if entry.backend.amis.get(entry.ami.id) is not entry.ami:
            return  # deregistered while pending: EC2 says nothing more about it
        if entry.fail:
            entry.ami.state = "failed"
            entry.ami.state_reason = {"Code": "Client.SnapshotCreationFailed",
                                      "Message": FAILURE_REASON}
            self._emit(entry, "failed", FAILURE_REASON)
        else:
            entry.ami.state = "available"
            self._emit(entry, "available")

    def _emit(self, entry: _Pending, state: str, reason: str = "") -> None:
        log.info("image %s (%s) is %s", entry.ami.id, entry.region, state)
        try:
            self.emit(entry.account, entry.region, entry.ami.id, state, reason)
        except Exception:  # an event that cannot be delivered is lost, as on AWS
            log.exception("image simulator: the %s event of %s was not sent", state,
                          entry.ami.id)


# -- the simulator moto's EC2 reaches (through the fills in .fills.ec2_images) -----------

_simulator: ImageSimulator | None = None


def attach(simulator: ImageSimulator | None) -> None:
    """Make ``simulator`` the one CreateImage and CopyImage reach (None: moto's own)."""
    global _simulator
    _simulator = simulator


def attached() -> ImageSimulator | None:
    return _simulator
