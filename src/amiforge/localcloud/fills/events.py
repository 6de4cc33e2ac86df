"""EventBridge fill: rules deliver as AWS's do (see :mod:`amiforge.localcloud.events`)."""

from __future__ import annotations

from amiforge.localcloud import events
from amiforge.localcloud.fills import Fill

FILLS = [
    Fill("events.deliver-to-every-target", "moto.events.models:Rule", "send_to_targets",
         events.routed_send_to_targets, "472e002e2dab"),
]
