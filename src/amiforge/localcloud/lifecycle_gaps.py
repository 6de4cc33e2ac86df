"""Fills for gaps in moto 5.2.5 that cleanup and retention meet. Nothing here knows amiforge.

* **StopExecution of a waiting execution.** moto's Step Functions marks the program
  stopped but leaves a task that waits for a callback (``.waitForTaskToken``) waiting
  until its own timeout, and the execution reads RUNNING all that while; when the wait
  ends the timeout is treated as a failure, so the stopped execution ends FAILED. On AWS
  StopExecution ends the execution at once: it is ABORTED, stays ABORTED, and its
  history ends with ExecutionAborted. Here the status is ABORTED when StopExecution
  returns, the waiting task is woken so the execution's thread ends, and a stopped
  program is never turned into a failed or timed-out one (the woken task still records
  a TaskTimedOut event just before ExecutionAborted).
* **EC2 image deprecation.** moto has no ``EnableImageDeprecation`` or
  ``DisableImageDeprecation`` ("not implemented") and so never shows an image's
  ``DeprecationTime``. Here, as AWS documents: the time is rounded to the nearest minute,
  a time in the past is refused, and ``DescribeImages`` shows it.
* **SSM ``DescribeParameters`` by data type.** AWS accepts the ``ParameterFilters`` key
  ``DataType`` (e.g. every parameter of data type ``aws:ec2:image``); moto refuses it as
  an invalid key. Here the filter is applied (options ``Equals`` and ``BeginsWith``).

Installed by :class:`~amiforge.localcloud.LocalCloud` for as long as it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

_undo: list[Callable[[], None]] = []


def _patch(owner: Any, name: str, value: Any) -> None:
    missing = object()
    original = getattr(owner, name, missing)
    setattr(owner, name, value)
    if original is missing:
        _undo.append(lambda: delattr(owner, name))
    else:
        _undo.append(lambda: setattr(owner, name, original))


def install() -> None:
    if _undo:
        return
    _install_stop_execution()
    _install_image_deprecation()
    _install_parameter_data_type_filter()


def uninstall() -> None:
    while _undo:
        _undo.pop()()


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        when = value
    else:
        when = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _install_stop_execution() -> None:
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
    from moto.stepfunctions.parser.backend.execution import Execution

    original_stop = Execution.stop

    def stop(self: Any, stop_date: Any, error: Any, cause: Any) -> None:
        original_stop(self, stop_date=stop_date, error=error, cause=cause)
        if self.exec_status == ExecutionStatus.RUNNING:
            self.exec_status = ExecutionStatus.ABORTED
            self.stop_date = stop_date
        worker = getattr(self, "exec_worker", None)
        if worker is not None:
            # Wake every task waiting for a callback: the program sees it is stopped.
            for endpoint in list(worker.env.callback_pool_manager._pool.values()):
                endpoint.interrupt_all()

    _patch(Execution, "stop", stop)
    for name in ("set_error", "set_timed_out"):
        original = getattr(Environment, name)

        def unless_stopped(self: Any, *args: Any, _original: Any = original,
                           **kwargs: Any) -> None:
            if isinstance(self._program_state, ProgramStopped):
                return  # a stopped execution stays stopped
            _original(self, *args, **kwargs)

        _patch(Environment, name, unless_stopped)


def _install_image_deprecation() -> None:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.responses.amis import AmisResponse

    def _image(response: Any) -> Any:
        image_id = response._get_param("ImageId")
        # Raises InvalidAMIID.NotFound / Malformed as DescribeImages does.
        return response.ec2_backend.describe_images(ami_ids=[image_id])[0]

    def enable_image_deprecation(self: Any) -> Any:
        raw = self._get_param("DeprecateAt")
        self.error_on_dryrun()
        image = _image(self)
        try:
            when = _parse_time(raw)
        except ValueError as err:
            raise EC2ClientError("InvalidParameterValue",
                                 f"DeprecateAt {raw!r} is not a date and time") from err
        # EC2 rounds seconds to the nearest minute.
        when = (when + timedelta(seconds=30)).replace(second=0, microsecond=0)
        if when <= datetime.now(UTC):
            raise EC2ClientError("InvalidParameterValue",
                                 f"DeprecateAt {raw}: the deprecation time must be in the future")
        image.deprecation_time = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return ActionResult({"Return": True})

    def disable_image_deprecation(self: Any) -> Any:
        self.error_on_dryrun()
        _image(self).deprecation_time = None
        return ActionResult({"Return": True})

    _patch(AmisResponse, "enable_image_deprecation", enable_image_deprecation)
    _patch(AmisResponse, "disable_image_deprecation", disable_image_deprecation)


def _install_parameter_data_type_filter() -> None:
    from moto.ssm.exceptions import InvalidFilterOption
    from moto.ssm.models import SimpleSystemManagerBackend

    original = SimpleSystemManagerBackend.describe_parameters

    def describe_parameters(self: Any, filters: Any, parameter_filters: Any) -> Any:
        by_type = [f for f in parameter_filters or [] if f.get("Key") == "DataType"]
        rest = [f for f in parameter_filters or [] if f.get("Key") != "DataType"]
        for item in by_type:
            option = item.get("Option", "Equals")
            if option not in ("Equals", "BeginsWith"):
                raise InvalidFilterOption(
                    f"The following filter option is not valid: {option}. Valid options "
                    "include: [BeginsWith, Equals].")
        found = original(self, filters, rest)
        for item in by_type:
            values = item.get("Values") or []
            if item.get("Option", "Equals") == "BeginsWith":
                found = [p for p in found if any(p.data_type.startswith(v) for v in values)]
            else:
                found = [p for p in found if p.data_type in values]
        return found

    _patch(SimpleSystemManagerBackend, "describe_parameters", describe_parameters)
