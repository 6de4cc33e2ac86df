"""Every status a build record can have, and what it means: one legend for the docs
(docs/architecture.md, held to it by a test), ``amiforge status``/``history --output
json`` (each row's ``last_status_meaning``/``status_meaning``) and the sweeper.

The catalog (aws/catalog.py) writes these; a status is over when nothing more will happen
to the build on its own (:data:`OVER`), which is when the sweeper may clean up after it.
"""

from __future__ import annotations

# Ordered as a build meets them.
MEANINGS: dict[str, str] = {
    "STARTING": "the execution started; Resolve has not yet pinned the recipe and base",
    "BUILDING": "the build is running: builder launched, verified, imaged, copied, registered",
    "AVAILABLE": "the image is built, registered and usable; `latest` may name it",
    "FAILED": "the build failed (reason and console tail recorded); nothing left running",
    "CANCELLED": "stopped by `amiforge cancel` (reason recorded); what it started was removed",
    "REVOKED": "was AVAILABLE; `amiforge rollback` took `latest` from it (reason, who, when "
               "recorded); its image is kept, never `latest` again unless `amiforge release`",
    "PRUNED": "was AVAILABLE; retention removed its image(s) and snapshots",
}
OVER = frozenset({"AVAILABLE", "FAILED", "CANCELLED", "PRUNED"})

