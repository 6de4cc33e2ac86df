"""Lambda entry points of the build pipeline: one function each, one line each.

The template's ``Handler`` strings name these attributes, e.g.
``amiforge.handlers.pipeline.launch``. Each names its event's schema
(:mod:`amiforge.core.events`), checked before the step runs.

Every function ships the same bundle, so this module imports no step: each entry is a
:class:`Step` that imports its own step module when first called (or at import time, in
Lambda's init phase, when ``_HANDLER`` names it: Lambda sets it to the function's
handler). A cold start then pays for one step's imports, not all fifteen.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import import_module
from typing import Any

from amiforge.core import events as ev
from amiforge.handlers.runtime import Schema, lambda_handler


class Step:
    """The handler of ``amiforge.steps.<module>.<function>``, checked by ``schema``."""

    def __init__(self, module: str, function: str, schema: Schema = None) -> None:
        self.module, self.function, self.schema = module, function, schema
        self._handler: Callable[..., Any] | None = None

    def resolve(self) -> Callable[..., Any]:
        if self._handler is None:
            step = getattr(import_module(f"amiforge.steps.{self.module}"), self.function)
            self._handler = lambda_handler(step, self.schema)
        return self._handler

    def __call__(self, event: Any, context: Any) -> Any:
        return self.resolve()(event, context)

    def __repr__(self) -> str:
        return f"Step(amiforge.steps.{self.module}.{self.function})"


resolve = Step("resolve", "resolve_and_launch", ev.RESOLVE)             # Resolve (+ Launch)
launch = Step("launch", "launch", ev.LAUNCH)                            # state Launch
create_build_stack = Step("build_stack", "create_build_stack",
                          ev.CREATE_BUILD_STACK)                        # CFN builder
await_build_stack = Step("build_stack", "await_build_stack",
                         ev.AWAIT_BUILD_STACK)                          # CFN builder
stop_builder = Step("build_stack", "stop_builder", ev.STOP_BUILDER)     # CFN builder
await_stop = Step("wait_stop", "register_wait", ev.AWAIT_STOP)          # AwaitStop (token)
instance_state = Step("wait_stop", "on_instance_state",
                      ev.check_instance_state)                          # EC2 stopped, check
verify = Step("verify", "verify", ev.VERIFY)                            # state Verify
create_image = Step("image", "create_image", ev.CREATE_IMAGE)           # state CreateImage
await_image = Step("image_wait", "await_image", ev.AWAIT_IMAGE)         # AwaitImage/Copies (token)
image_state = Step("image_wait", "on_image_state",
                   ev.check_image_state)                                # EC2 AMI event, check
await_approval = Step("approval", "request_approval",
                      ev.AWAIT_APPROVAL)                                # AwaitApproval (token)
launch_tester = Step("test_phase", "launch_tester", ev.LAUNCH_TESTER)   # state LaunchTester
verify_test = Step("test_phase", "verify_test", ev.VERIFY_TEST)         # VerifyTest, TestNotPassed
distribute = Step("distribute", "distribute", ev.DISTRIBUTE)            # state Distribute
register = Step("register", "register_and_finish", ev.REGISTER)        # Register (+ Finish)
roll_out = Step("rollout", "roll_out", ev.ROLL_OUT)                      # state RollOut
await_refresh = Step("refresh_wait", "handle",
                     ev.check_refresh_wait)                             # AwaitRefresh (token),
#                                                      refresh events, check, RefreshTimedOut
roll_back_release = Step("rollout_back", "roll_back_release",
                         ev.ROLL_BACK_RELEASE)                          # RollBackRelease
finish = Step("finish", "finish", ev.FINISH)                            # state Finish
record_failure = Step("finish", "record_failure", ev.RECORD_FAILURE)    # failure path
cleanup = Step("cleanup", "cleanup_messages")          # SQS: each message checked by the step
detect = Step("detect", "detect", ev.DETECT)                            # schedule: new bases
prune = Step("prune", "prune", ev.PRUNE)                                # schedule: retention
sweep = Step("sweep", "sweep", ev.SWEEP)                                # schedule: leftovers

HANDLERS: dict[str, Step] = {name: value for name, value in globals().items()
                             if isinstance(value, Step)}

# In Lambda's init phase, import the step this function runs (its imports are then part of
# the init, as before, but only its own).
_module, _, _name = os.environ.get("_HANDLER", "").rpartition(".")
if _module == __name__ and _name in HANDLERS:
    HANDLERS[_name].resolve()
