"""The program a local Lambda execution environment runs: AWS's Python runtime loop.

Started as ``python -I -S lambda_bootstrap.py TASK_DIR RUNTIME_DIR [OPT_DIR...]`` by
:mod:`amiforge.localcloud.lambda_runtime`, it sees only the standard library until it
builds ``sys.path`` the way the Lambda runtime does: the function's code first, then its
layers, then the standard library, then the runtime's own packages (boto3 and its
dependencies). A bundle that forgot a dependency therefore fails here with the same
``Runtime.ImportModuleError`` it would meet on AWS.

Protocol (one environment, many invocations, like a warm Lambda sandbox):

* stdin: one JSON line per invocation, ``{"event", "context", "log_path"}``;
* during an invocation, file descriptors 1 and 2 (the function's prints, its child
  processes' output) go to ``log_path``;
* the original stdout carries one JSON line back per invocation:
  ``{"ok": bool, "payload": str, "fatal": bool}``, ``payload`` being exactly what AWS
  would return (the JSON result, or the error document with ``errorType``). ``fatal``
  (the handler could not be loaded) ends the environment, as an init error does on AWS.

The handler module is imported on the first invocation (the cold start) and kept, so
module-level clients are reused by later invocations, as on AWS.

Standard library only: this file runs before any package is importable.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The ``context`` argument of a handler, with the attributes AWS's runtime sets."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.function_name: str = data["function_name"]
        self.function_version: str = data["function_version"]
        self.invoked_function_arn: str = data["invoked_function_arn"]
        self.memory_limit_in_mb: int = int(data["memory_limit_in_mb"])
        self.aws_request_id: str = data["aws_request_id"]
        self.log_group_name: str = data["log_group_name"]
        self.log_stream_name: str = data["log_stream_name"]
        self.identity: Any = None
        self.client_context: Any = None
        self.tenant_id: Any = None
        self._deadline_ms: int = int(data["deadline_ms"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(error_type: str, message: str, request_id: str,
           stack: list[str] | None = None) -> dict[str, Any]:
    return {"errorMessage": message, "errorType": error_type, "requestId": request_id,
            "stackTrace": stack or []}


def _load_handler(handler: str, request_id: str) -> tuple[Any, dict[str, Any] | None]:
    import importlib

    module_name, _, func_name = handler.rpartition(".")
    if not module_name or not func_name:
        return None, _error("Runtime.MalformedHandlerName",
                            f"Bad handler '{handler}': not enough values to unpack "
                            "(expected 2, got 1)", request_id)
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as err:
        return None, _error("Runtime.ImportModuleError",
                            f"Unable to import module '{module_name}': {err}", request_id)
    except SyntaxError as err:
        return None, _error("Runtime.UserCodeSyntaxError",
                            f"Syntax error in module '{module_name}': {err}", request_id)
    except Exception as err:  # an exception at import time is reported as the function's
        return None, _error(type(err).__name__, str(err), request_id,
                            traceback.format_tb(err.__traceback__))
    fn = getattr(module, func_name, None)
    if fn is None:
        return None, _error("Runtime.HandlerNotFound",
                            f"Handler '{func_name}' missing on module '{module_name}'",
                            request_id)
    return fn, None


def _invoke(fn: Any, envelope: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request_id = context.aws_request_id
    try:
        result = fn(envelope["event"], context)
    except Exception as err:
        sys.stdout.flush()
        print(f"[ERROR] {type(err).__name__}: {err}", file=sys.stderr)
        traceback.print_exc()
        error = _error(type(err).__name__, str(err), request_id,
                       traceback.format_tb(err.__traceback__))
        return {"ok": False, "payload": json.dumps(error), "fatal": False}
    try:
        return {"ok": True, "payload": json.dumps(result), "fatal": False}
    except (TypeError, ValueError) as err:
        error = _error("Runtime.MarshalError", f"Unable to marshal response: {err}",
                       request_id)
        return {"ok": False, "payload": json.dumps(error), "fatal": False}


def _redirect(path: str | None) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    target = os.open(path or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(target, 1)
    os.dup2(target, 2)
    os.close(target)


def main() -> int:
    task_dir, runtime_dir, *opt_dirs = sys.argv[1:]
    # sys.path[0] is this file's directory (the runtime dir) and is dropped;
    # site-packages never appear (-I -S).
    stdlib = [p for p in sys.path[1:] if p]
    return serve(task_dir, runtime_dir, opt_dirs, stdlib)


def serve(task_dir: str, runtime_dir: str, opt_dirs: list[str], stdlib: list[str]) -> int:
    """The invocation loop on stdin/stdout. Also entered by a process forked from the
    pre-initialised parent (:mod:`lambda_zygote`), with the same path and directory."""
    # Lambda's order: code, layers, standard library, runtime packages.
    sys.path[:] = [task_dir, *opt_dirs, *stdlib, runtime_dir]
    os.chdir(task_dir)
    results = os.fdopen(os.dup(1), "w", encoding="utf-8")
    _redirect(None)
    fn = None
    while True:
        line = sys.stdin.readline()
        if not line:
            return 0
        envelope = json.loads(line)
        context = LambdaContext(envelope["context"])
        _redirect(envelope.get("log_path"))
        if fn is None:
            fn, error = _load_handler(os.environ.get("_HANDLER", ""), context.aws_request_id)
            if error is not None:
                print(f"[ERROR] {error['errorType']}: {error['errorMessage']}",
                      file=sys.stderr)
                outcome = {"ok": False, "payload": json.dumps(error), "fatal": True}
        if fn is not None:
            outcome = _invoke(fn, envelope, context)
        _redirect(None)
        results.write(json.dumps(outcome) + "\n")
        results.flush()
        if outcome["fatal"]:
            return 1


if __name__ == "__main__":
    sys.exit(main())
