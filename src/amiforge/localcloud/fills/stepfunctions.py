"""Step Functions fills: moto's executing (parser) backend, run as AWS runs executions.

* **One backend.** With ``execute_state_machine`` on, the API reads the parser backend,
  but CloudFormation creates ``AWS::StepFunctions::StateMachine`` in the plain one: a
  stack's state machine would not exist for StartExecution. The plain backends' name is
  pointed at the parser's.
* **StartExecution** without a name gets a UUID, as on AWS (moto's parser uses "None"),
  and two concurrent calls with one name cannot both succeed (:mod:`.atomic`).
* **Its own clients** (Lambda tasks, SDK integrations) call ``127.0.0.1:MOTO_PORT``;
  moto builds them for ``localhost``, and a new one for every task; here one is kept per
  region and service. Modules that imported ``boto_client_for`` by name
  hold their own reference, so each is a target of its own.
* **StopExecution of a waiting execution.** moto marks the program stopped but leaves a
  task that waits for a callback (``.waitForTaskToken``) waiting until its own timeout,
  the execution reading RUNNING all that while and ending FAILED. On AWS StopExecution
  ends it at once: ABORTED, and it stays ABORTED. Here the status is ABORTED when
  StopExecution returns, the waiting task is woken so the execution's thread ends, and a
  stopped program is never turned into a failed or timed-out one (the woken task still
  records a TaskTimedOut event just before ExecutionAborted).
* **SendTaskFailure's cause.** moto's handler passes on the error and drops the cause;
  AWS hands both to the task's Catch (``$.error.Cause``), which is where RecordFailure
  reads why a build failed (an image that failed names EC2's reason there).
"""

from __future__ import annotations

import importlib
import threading
import uuid
from collections.abc import Callable
from typing import Any

from amiforge.localcloud.fills import Fill
from amiforge.localcloud.fills.atomic import WRITE_LOCK

_PARSER = "moto.stepfunctions.parser"
_STATE_TASK = f"{_PARSER}.asl.component.state.exec.state_task"
_STATE_MAP = f"{_PARSER}.asl.component.state.exec.state_map"
# Every module of moto 5.2.5 that did `from ...boto_client import boto_client_for`.
BOTO_CLIENT_IMPORTERS = (
    f"{_PARSER}.asl.utils.boto_client",
    f"{_STATE_TASK}.lambda_eval_utils",
    f"{_STATE_TASK}.service.state_task_service_aws_sdk",
    f"{_STATE_TASK}.service.state_task_service_batch",
    f"{_STATE_TASK}.service.state_task_service_dynamodb",
    f"{_STATE_TASK}.service.state_task_service_ecs",
    f"{_STATE_TASK}.service.state_task_service_events",
    f"{_STATE_TASK}.service.state_task_service_glue",
    f"{_STATE_TASK}.service.state_task_service_sfn",
    f"{_STATE_TASK}.service.state_task_service_sns",
    f"{_STATE_TASK}.service.state_task_service_sqs",
    f"{_STATE_TASK}.service.state_task_service_unsupported",
    f"{_STATE_MAP}.item_reader.eval.resource_eval_s3",
    f"{_STATE_MAP}.result_writer.resource_eval.resource_eval_s3",
)


def _start_execution(original: Callable[..., Any]) -> Callable[..., Any]:
    def start_execution(self: Any, state_machine_arn: str, name: Any = None,
                        *args: Any, **kwargs: Any) -> Any:
        with WRITE_LOCK:
            return original(self, state_machine_arn, name or str(uuid.uuid4()),
                            *args, **kwargs)

    return start_execution


def _parser_backends(_original: Any) -> Any:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    return stepfunctions_parser_backends


_CLIENTS: dict[tuple[str, str, str], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    """moto's ``boto_client_for``, calling this server on 127.0.0.1.

    moto makes a new client for every task a state runs (about 25 ms of CPU each); a
    client is safe to share between threads, so one is kept per region, service and
    port. moto's clients carry fixed keys, not the state's credentials, and so do these.
    """
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import (
        TimeoutSeconds,
    )

    key = (region, service, moto_server_port())
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            # boto3 and botocore by name: they have no type hints.
            boto3: Any = importlib.import_module("boto3")
            config: Any = importlib.import_module("botocore.config")
            client = boto3.client(
                service_name=service, region_name=region, aws_access_key_id="ak",
                aws_secret_access_key="sk", endpoint_url=f"http://127.0.0.1:{key[2]}",
                config=config.Config(
                    parameter_validation=False,
                    retries={"max_attempts": 0, "total_max_attempts": 1},
                    connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                    read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                    # many executions' tasks at once share the client's connections
                    max_pool_connections=64))
            _CLIENTS[key] = client
        return client


def _stop(original: Callable[..., None]) -> Callable[..., None]:
    def stop(self: Any, stop_date: Any, error: Any, cause: Any) -> None:
        from moto.stepfunctions.parser.api import ExecutionStatus

        original(self, stop_date=stop_date, error=error, cause=cause)
        if self.exec_status == ExecutionStatus.RUNNING:
            self.exec_status = ExecutionStatus.ABORTED
            self.stop_date = stop_date
        worker = getattr(self, "exec_worker", None)
        if worker is not None:
            # Wake every task waiting for a callback: the program sees it is stopped.
            for endpoint in list(worker.env.callback_pool_manager._pool.values()):
                endpoint.interrupt_all()

    return stop


def _unless_stopped(original: Callable[..., None]) -> Callable[..., None]:
    def unless_stopped(self: Any, *args: Any, **kwargs: Any) -> None:
        from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

        if isinstance(self._program_state, ProgramStopped):
            return  # a stopped execution stays stopped
        original(self, *args, **kwargs)

    return unless_stopped


def _short(module: str) -> str:
    return ".".join(module.split(".")[-2:])


_ENVIRONMENT = f"{_PARSER}.asl.eval.environment:Environment"

def send_task_failure(self: Any) -> Any:
    """``StepFunctionResponse.send_task_failure``: the error *and* the cause, as AWS."""
    from moto.core.responses import EmptyResult

    self.stepfunction_backend.send_task_failure(self._get_param("taskToken"),
                                                error=self._get_param("error"),
                                                cause=self._get_param("cause"))
    return EmptyResult()


FILLS = [
    Fill("stepfunctions.start-execution", f"{_PARSER}.models:StepFunctionsParserBackend",
         "start_execution", _start_execution, "0f8d9dd57baf"),
    Fill("stepfunctions.one-backend", "moto.stepfunctions.models", "stepfunctions_backends",
         _parser_backends, "ebfe2a2bf4ee"),
    *(Fill(f"stepfunctions.client-on-loopback:{_short(module)}", module,
           "boto_client_for", lambda _original: boto_client_for, "1f44dc2ac8aa")
      for module in BOTO_CLIENT_IMPORTERS),
    Fill("stepfunctions.send-task-failure-cause", "moto.stepfunctions.responses:"
         "StepFunctionResponse", "send_task_failure", lambda _original: send_task_failure,
         "f0fed5e80576"),
    Fill("stepfunctions.stop-execution", f"{_PARSER}.backend.execution:Execution", "stop",
         _stop, "16663c65db9a"),
    Fill("stepfunctions.stopped-stays-stopped:error", _ENVIRONMENT, "set_error",
         _unless_stopped, "6447409d4056"),
    Fill("stepfunctions.stopped-stays-stopped:timeout", _ENVIRONMENT, "set_timed_out",
         _unless_stopped, "853b04bf9e6a"),
]
