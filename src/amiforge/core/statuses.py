"""Every status a build record can have, and what it means: the one place statuses are
declared. :class:`BuildStatus` is a ``StrEnum``, so a member equals its string
(``BuildStatus.FAILED == "FAILED"``) and records read back from DynamoDB as plain
strings compare with it unchanged.

The legend (:data:`MEANINGS`) serves the docs (docs/architecture.md, held to it by a
test), ``amiforge status``/``history --output json`` (each row's
``last_status_meaning``/``status_meaning``) and the sweeper.

The catalog (aws/catalog.py) writes these; a status is over when nothing more will happen
to the build on its own (:data:`OVER`), which is when the sweeper may clean up after it;
a build whose status is in :data:`IN_FLIGHT` is followed by ``amiforge build`` rather
than started again.
"""

from __future__ import annotations

from enum import StrEnum


class BuildStatus(StrEnum):
    """Ordered as a build meets them."""

    STARTING = "STARTING"
    BUILDING = "BUILDING"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    AVAILABLE = "AVAILABLE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    REVOKED = "REVOKED"
    PRUNED = "PRUNED"


MEANINGS: dict[str, str] = {
    BuildStatus.STARTING: "the execution started; Resolve has not yet pinned the recipe and base",
    BuildStatus.BUILDING: "the build is running: builder launched, verified, imaged, copied, "
                          "registered",
    BuildStatus.AWAITING_APPROVAL: "the image is built and waits for `amiforge approve` or "
                                   "`amiforge reject` (release.approval: manual) before it is "
                                   "copied, shared and made `latest`",
    BuildStatus.AVAILABLE: "the image is built, registered and usable; `latest` may name it",
    BuildStatus.FAILED: "the build failed (reason and console tail recorded); nothing left "
                        "running",
    BuildStatus.CANCELLED: "stopped by `amiforge cancel` (reason recorded); what it started "
                           "was removed",
    BuildStatus.REVOKED: "was AVAILABLE; `amiforge rollback` took `latest` from it (reason, "
                         "who, when recorded); its image is kept, never `latest` again unless "
                         "`amiforge release`",
    BuildStatus.PRUNED: "was AVAILABLE; retention removed its image(s) and snapshots",
}
OVER: frozenset[BuildStatus] = frozenset({
    BuildStatus.AVAILABLE, BuildStatus.FAILED, BuildStatus.CANCELLED, BuildStatus.PRUNED})
# A build awaiting approval is in flight: its execution still runs (parked on a task token),
# so the sweeper leaves it, retention and `latest` never see it (it is not AVAILABLE),
# detection follows it instead of starting its key again, and cancel/destroy stop it.
IN_FLIGHT: frozenset[BuildStatus] = frozenset({BuildStatus.STARTING, BuildStatus.BUILDING,
                                              BuildStatus.AWAITING_APPROVAL})
