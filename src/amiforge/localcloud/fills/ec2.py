"""EC2 instance fills: launches reach the build-instance simulator, and what AWS adds.

* **The simulator** (:mod:`amiforge.localcloud.ec2_sim`) hears of every launched builder
  (RunInstances), and RunInstances, StopInstances, TerminateInstances and StartInstances
  emit the state-change events AWS would (moto emits none). ``GetConsoleOutput`` of a
  simulated instance answers its console (base64, as AWS).
* **Network-interface tags at launch.** RunInstances accepts ``TagSpecifications`` with
  ``ResourceType: network-interface`` and AWS tags the instance's network interfaces with
  them as it creates them; moto drops them. Here the interfaces get their tags too.
* **A network interface's association** reads ``public_ip`` twice; an instance stopping
  in another thread (the simulator) clears it in between, and DescribeInstances answers a
  500. It is read once here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from amiforge.localcloud import ec2_sim
from amiforge.localcloud.fills import Fill


def _emit(backend: Any, instance: Any, *states: str) -> None:
    simulator = ec2_sim.attached()
    if simulator is None:
        return
    for state in states:
        simulator.emit(backend.account_id, backend.region_name, instance.id, state)


def _run_instances(original: Callable[..., Any]) -> Callable[..., Any]:
    def run_instances(self: Any, *args: Any, **kwargs: Any) -> Any:
        interface_tags = dict((kwargs.get("tags") or {}).get("network-interface") or {})
        reservation = original(self, *args, **kwargs)
        for instance in reservation.instances:
            if interface_tags:
                for interface in instance.network_interfaces:
                    interface.add_tags(interface_tags)
        simulator = ec2_sim.attached()
        if simulator is not None:
            for instance in reservation.instances:
                if ec2_sim.instance_tags(instance).get(ec2_sim.ROLE_TAG) in ec2_sim.SIMULATED_ROLES:
                    simulator.launched(instance, self.account_id, self.region_name)
                    _emit(self, instance, "pending")
                else:
                    _emit(self, instance, "pending", "running")
        return reservation

    return run_instances


def _state_change(steps: dict[str, tuple[str, ...]]
                  ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A fill emitting, for each instance changed from a state in ``steps``, its events."""

    def build(original: Callable[..., Any]) -> Callable[..., Any]:
        def changed_state(self: Any, instance_ids: list[str]) -> Any:
            changed = original(self, instance_ids)
            for instance, previous in changed:
                before = getattr(previous, "name", None)
                if before in steps:
                    _emit(self, instance, *steps[before])
            return changed

        changed_state.__name__ = original.__name__
        return changed_state

    return build


def _get_console_output(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_console_output(self: Any) -> Any:
        from moto.core.responses import ActionResult
        from moto.core.types import Base64EncodedString
        from moto.core.utils import utcnow

        simulator = ec2_sim.attached()
        instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
        text = simulator.console(instance.id) if simulator is not None else None
        if text is None:
            return original(self)
        result: dict[str, Any] = {"InstanceId": instance.id, "Timestamp": utcnow()}
        if text:
            result["Output"] = Base64EncodedString.from_raw_string(text)
        return ActionResult(result)

    return get_console_output


def association(self: Any) -> dict[str, Any]:
    """``NetworkInterface.association``, reading ``public_ip`` once."""
    from moto.ec2.utils import generate_dns_from_ip

    public_ip = self.public_ip  # once: a stop in another thread may clear it
    if not public_ip:
        return {}
    eips = self.ec2_backend.address_by_ip([public_ip], fail_if_not_found=False)
    eip = eips[0] if eips else None
    found: dict[str, Any] = {}
    if eip:
        found["allocationId"] = eip.allocation_id or None
        found["associationId"] = eip.association_id or None
    return {**found, "natEnabled": True, "publicIp": public_ip,
            "publicDnsName": generate_dns_from_ip(public_ip),
            "ipOwnerId": self.ec2_backend.account_id}


_INSTANCES = "moto.ec2.models.instances:InstanceBackend"
_LIVE = ("pending", "running")

FILLS = [
    Fill("ec2.run-instances", _INSTANCES, "run_instances", _run_instances, "4f521b284b7e"),
    Fill("ec2.stop-instances-events", _INSTANCES, "stop_instances",
         _state_change({s: ("stopping", "stopped") for s in _LIVE}), "122b72200b48"),
    Fill("ec2.terminate-instances-events", _INSTANCES, "terminate_instances",
         _state_change({s: ("shutting-down", "terminated")
                        for s in (*_LIVE, "stopping", "stopped")}), "00c52272f035"),
    Fill("ec2.start-instances-events", _INSTANCES, "start_instances",
         _state_change({"stopped": ("pending", "running")}), "d63bc0ad1d5b"),
    Fill("ec2.console-output", "moto.ec2.responses.general:General", "get_console_output",
         _get_console_output, "13dbe398f5f7"),
    Fill("ec2.interface-association", "moto.ec2.models.elastic_network_interfaces:"
         "NetworkInterface", "association", lambda _original: property(association), "342d9a7ab42e"),
]
