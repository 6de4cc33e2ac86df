"""Auto Scaling instance refresh, which moto 5.2.5 lacks: StartInstanceRefresh,
DescribeInstanceRefreshes, CancelInstanceRefresh and RollbackInstanceRefresh.

A refresh runs in a thread, as AWS runs it in the background: ``Pending``, then
``InProgress`` after :data:`STEP_SECONDS`, then, after as long again, the group's
instances are replaced (the old ones terminated, new ones launched from the desired
configuration: the launch template version the refresh names, which the group then
references) and the refresh is ``Successful``. AWS's refresh events ("EC2 Auto Scaling
Instance Refresh Started/Succeeded/Failed/Cancelled/Rollback Succeeded/Rollback Failed", source
``aws.autoscaling``) go to the region's default bus.

Directives, as the builder simulator reads ``# amiforge-sim:`` lines, are read from the
group's tag ``amiforge-sim:refresh``:

* ``fail``: the new instances never pass their health checks; with ``AutoRollback`` the
  refresh ends ``RollbackSuccessful`` (the old instances and configuration stay), without
  it ``Failed``;
* ``slow N``: each of the two steps takes N seconds (a test can look between them).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from amiforge.localcloud.fills import Fill

log = logging.getLogger(__name__)
STEP_SECONDS = 0.5
DIRECTIVE_TAG = "amiforge-sim:refresh"
ACTIVE = ("Pending", "InProgress", "Cancelling", "RollbackInProgress")
DETAIL = {"InProgress": "EC2 Auto Scaling Instance Refresh Started",
          "Successful": "EC2 Auto Scaling Instance Refresh Succeeded",
          "Failed": "EC2 Auto Scaling Instance Refresh Failed",
          "Cancelled": "EC2 Auto Scaling Instance Refresh Cancelled",
          "RollbackSuccessful": "EC2 Auto Scaling Instance Refresh Rollback Succeeded",
          "RollbackFailed": "EC2 Auto Scaling Instance Refresh Rollback Failed"}
_lock = threading.RLock()


def _error(code: str, message: str) -> Exception:
    from moto.autoscaling.exceptions import AutoscalingClientError

    class RefreshError(AutoscalingClientError):
        pass

    RefreshError.code = code
    return RefreshError(message)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def directive(group: Any) -> tuple[bool, float]:
    """(fail, seconds per step) from the group's ``amiforge-sim:refresh`` tag."""
    tags = {t.get("key") or t.get("Key"): t.get("value") or t.get("Value")
            for t in getattr(group, "tags", []) or []}
    words = str(tags.get(DIRECTIVE_TAG) or "").split()
    seconds = STEP_SECONDS
    if "slow" in words:
        at = words.index("slow")
        with contextlib.suppress(IndexError, ValueError):
            seconds = float(words[at + 1])
    return "fail" in words, seconds


def _refreshes(group: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] | None = getattr(group, "_amiforge_refreshes", None)
    if found is None:
        found = []
        group._amiforge_refreshes = found
    return found


def _emit(backend: Any, group: Any, refresh: dict[str, Any]) -> None:
    detail = DETAIL.get(refresh["Status"])
    if detail is None:
        return
    from amiforge.localcloud import events

    try:
        events.put_event(backend.account_id, backend.region_name, "aws.autoscaling", detail,
                         {"InstanceRefreshId": refresh["InstanceRefreshId"],
                          "AutoScalingGroupName": group.name,
                          "StatusReason": refresh.get("StatusReason", "")},
                         [group.arn])
    except Exception:  # an event nobody can take must not stop the refresh
        log.exception("could not deliver the instance refresh event")


def _set(backend: Any, group: Any, refresh: dict[str, Any], status: str,
         reason: str = "", percentage: int | None = None) -> None:
    with _lock:
        refresh["Status"] = status
        refresh["StatusReason"] = reason
        if percentage is not None:
            refresh["PercentageComplete"] = percentage
        if status not in ACTIVE:
            refresh["EndTime"] = _now()
    _emit(backend, group, refresh)


def _replace(backend: Any, group: Any, refresh: dict[str, Any]) -> None:
    template = (refresh.get("DesiredConfiguration") or {}).get("LaunchTemplate") or {}
    if template.get("LaunchTemplateId"):
        group.ec2_launch_template = backend.ec2_backend.get_launch_template(
            template["LaunchTemplateId"])
        group.launch_template_version = str(template.get("Version") or "$Default")
        group.provided_launch_template_version = template.get("Version")
    old = [state.instance.id for state in group.instance_states]
    if old:
        backend.ec2_backend.terminate_instances(old)
    group.instance_states = []
    group.set_desired_capacity(group.desired_capacity)


def _run(backend: Any, group: Any, refresh: dict[str, Any]) -> None:
    fail, seconds = directive(group)
    time.sleep(seconds)
    if refresh["Status"] != "Pending":
        return
    _set(backend, group, refresh, "InProgress", percentage=0)
    time.sleep(seconds)
    with _lock:
        if refresh["Status"] != "InProgress":  # cancelled or rolled back meanwhile
            return
    if fail:
        rollback = (refresh.get("Preferences") or {}).get("AutoRollback")
        reason = ("the new instances failed their health checks "
                  f"({DIRECTIVE_TAG}: fail)")
        _set(backend, group, refresh, "RollbackSuccessful" if rollback else "Failed",
             reason + ("; rolled back to the previous configuration" if rollback else ""))
        return
    try:
        _replace(backend, group, refresh)
    except Exception as err:  # a template or image gone: the refresh fails, as on AWS
        log.exception("instance refresh failed")
        _set(backend, group, refresh, "Failed", f"could not launch instances: {err}")
        return
    _set(backend, group, refresh, "Successful", percentage=100)


def _group(self: Any) -> tuple[Any, Any]:
    from moto.autoscaling.exceptions import ValidationError

    backend = self.autoscaling_backend
    name = self._get_param("AutoScalingGroupName")
    group = backend.autoscaling_groups.get(name)
    if group is None:
        raise ValidationError(f"AutoScalingGroup name not found - {name}")
    return backend, group


def start_instance_refresh(_original: Any) -> Callable[..., Any]:
    def start(self: Any) -> Any:
        from moto.core.responses import ActionResult

        backend, group = _group(self)
        params = self._get_params()
        with _lock:
            if any(r["Status"] in ACTIVE for r in _refreshes(group)):
                raise _error("InstanceRefreshInProgress",
                             f"An Instance Refresh is already in progress and blocks the "
                             f"execution of this Instance Refresh for {group.name}.")
            refresh = {"InstanceRefreshId": str(uuid.uuid4()),
                       "AutoScalingGroupName": group.name, "Status": "Pending",
                       "StatusReason": "", "StartTime": _now(), "PercentageComplete": 0,
                       "Preferences": params.get("Preferences") or {},
                       "DesiredConfiguration": params.get("DesiredConfiguration") or {}}
            _refreshes(group).insert(0, refresh)
        threading.Thread(target=_run, args=(backend, group, refresh), daemon=True,
                         name=f"refresh-{group.name}").start()
        return ActionResult({"InstanceRefreshId": refresh["InstanceRefreshId"]})

    return start


def describe_instance_refreshes(_original: Any) -> Callable[..., Any]:
    def describe(self: Any) -> Any:
        from moto.core.responses import ActionResult

        _backend, group = _group(self)
        wanted = set(self._get_params().get("InstanceRefreshIds") or [])
        with _lock:
            found = [{k: v for k, v in r.items() if k != "DesiredConfiguration"}
                     for r in _refreshes(group)
                     if not wanted or r["InstanceRefreshId"] in wanted]
        return ActionResult({"InstanceRefreshes": found})

    return describe


def _stop(status: str, missing: str) -> Callable[[Any], Callable[..., Any]]:
    """CancelInstanceRefresh / RollbackInstanceRefresh: end the active refresh before it
    replaces anything (the old instances stay)."""

    def build(_original: Any) -> Callable[..., Any]:
        def stop(self: Any) -> Any:
            from moto.core.responses import ActionResult

            backend, group = _group(self)
            with _lock:
                active = [r for r in _refreshes(group) if r["Status"] in ACTIVE]
                if not active:
                    raise _error(missing, f"No in progress or pending Instance Refresh "
                                          f"found for Auto Scaling group {group.name}")
            _set(backend, group, active[0], status, f"{status} by request")
            return ActionResult({"InstanceRefreshId": active[0]["InstanceRefreshId"]})

        return stop

    return build


_RESPONSES = "moto.autoscaling.responses:AutoScalingResponse"
FILLS = [
    Fill("autoscaling.start-instance-refresh", _RESPONSES, "start_instance_refresh",
         start_instance_refresh, None),
    Fill("autoscaling.describe-instance-refreshes", _RESPONSES,
         "describe_instance_refreshes", describe_instance_refreshes, None),
    Fill("autoscaling.cancel-instance-refresh", _RESPONSES, "cancel_instance_refresh",
         _stop("Cancelled", "ActiveInstanceRefreshNotFound"), None),
    Fill("autoscaling.rollback-instance-refresh", _RESPONSES, "rollback_instance_refresh",
         _stop("RollbackSuccessful", "ActiveInstanceRefreshNotFound"), None),
]
