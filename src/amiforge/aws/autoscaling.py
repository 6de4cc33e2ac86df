"""Auto Scaling adapter for the rollout: a group's launch template, and its instance
refreshes (start, describe, roll back). Thin: what a refresh asks for is
:func:`amiforge.core.rollout.refresh_request`, what its status means
:func:`amiforge.core.rollout.refresh_outcome`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amiforge.aws.errors import ClientError, aws_call, error_code, translate

# A refresh is running already: a retried start finds it instead of failing.
IN_PROGRESS = "InstanceRefreshInProgress"


@dataclass(frozen=True)
class Group:
    """A group, its launch template (id, version as the group names it) and tags."""

    name: str
    template_id: str | None
    template_version: str | None
    tags: dict[str, str]


@dataclass(frozen=True)
class Refresh:
    refresh_id: str
    status: str
    reason: str
    percentage: int


def group(autoscaling: Any, name: str) -> Group | None:
    with aws_call("DescribeAutoScalingGroups"):
        found = autoscaling.describe_auto_scaling_groups(
            AutoScalingGroupNames=[name]).get("AutoScalingGroups", [])
    if not found:
        return None
    g = found[0]
    spec = (g.get("LaunchTemplate")
            or ((g.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {})
            .get("LaunchTemplateSpecification") or {})
    return Group(g["AutoScalingGroupName"], spec.get("LaunchTemplateId"),
                 str(spec["Version"]) if spec.get("Version") else None,
                 {t["Key"]: t["Value"] for t in g.get("Tags", []) or []})


def start_refresh(autoscaling: Any, request: dict[str, Any]) -> str:
    """Start a refresh; its id. If one is running already (a retried step), its id."""
    try:
        return str(autoscaling.start_instance_refresh(**request)["InstanceRefreshId"])
    except ClientError as err:
        if error_code(err) != IN_PROGRESS:
            raise translate(err, "StartInstanceRefresh") from err
        failure = translate(err, "StartInstanceRefresh")
    running = [r for r in refreshes(autoscaling, request["AutoScalingGroupName"])
               if r.status in {"Pending", "InProgress"}]
    if not running:  # it ended between the two calls: the start's own error
        raise failure
    return running[0].refresh_id


def refreshes(autoscaling: Any, group_name: str, *ids: str) -> list[Refresh]:
    """The group's refreshes (newest first), or only ``ids``."""
    extra: dict[str, Any] = {"InstanceRefreshIds": list(ids)} if ids else {}
    with aws_call("DescribeInstanceRefreshes"):
        found = autoscaling.describe_instance_refreshes(
            AutoScalingGroupName=group_name, **extra).get("InstanceRefreshes", [])
    return [Refresh(str(r["InstanceRefreshId"]), str(r.get("Status", "")),
                    str(r.get("StatusReason") or ""), int(r.get("PercentageComplete") or 0))
            for r in found]


def roll_back(autoscaling: Any, group_name: str) -> None:
    """Roll back the group's running refresh (AWS puts its previous configuration back);
    nothing if none runs."""
    try:
        autoscaling.rollback_instance_refresh(AutoScalingGroupName=group_name)
    except ClientError as err:
        if error_code(err) not in {"ActiveInstanceRefreshNotFound",
                                   "ActiveInstanceRefreshNotFoundFault",
                                   "IrreversibleInstanceRefresh"}:
            raise translate(err, "RollbackInstanceRefresh") from err
