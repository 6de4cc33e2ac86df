"""Fill for a gap in moto 5.2.5's EC2 that Launch meets. Nothing here knows amiforge.

**Network-interface tags at launch.** RunInstances accepts ``TagSpecifications`` with
``ResourceType: network-interface`` and AWS tags the instance's network interfaces with
them as it creates them; moto applies only the ``instance`` and ``volume`` specifications
and drops the rest. Here the interfaces a launch creates get their tags too.

Installed by :class:`~amiforge.localcloud.LocalCloud` for as long as it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_undo: list[Callable[[], None]] = []


def install() -> None:
    if _undo:
        return
    from moto.ec2.models.instances import InstanceBackend

    original = InstanceBackend.run_instances

    def run_instances(self: Any, *args: Any, **kwargs: Any) -> Any:
        interface_tags = dict((kwargs.get("tags") or {}).get("network-interface") or {})
        reservation = original(self, *args, **kwargs)
        if interface_tags:
            for instance in reservation.instances:
                for interface in instance.network_interfaces:
                    interface.add_tags(interface_tags)
        return reservation

    InstanceBackend.run_instances = run_instances
    _undo.append(lambda: setattr(InstanceBackend, "run_instances", original))


def uninstall() -> None:
    while _undo:
        _undo.pop()()
