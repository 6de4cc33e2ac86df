"""Lambda entry points of the build pipeline: one function each, one line each.

The template's ``Handler`` strings name these attributes, e.g.
``amiforge.handlers.pipeline.launch``. Each names its event's schema
(:mod:`amiforge.core.events`), checked before the step runs.
"""

from amiforge.core import events as ev
from amiforge.handlers.runtime import lambda_handler
from amiforge.steps import approval as _approval
from amiforge.steps import build_stack as _build_stack
from amiforge.steps import cleanup as _cleanup
from amiforge.steps import detect as _detect
from amiforge.steps import distribute as _distribute
from amiforge.steps import finish as _finish
from amiforge.steps import image as _image
from amiforge.steps import launch as _launch
from amiforge.steps import prune as _prune
from amiforge.steps import register as _register
from amiforge.steps import resolve as _resolve
from amiforge.steps import sweep as _sweep
from amiforge.steps import test_phase as _test_phase
from amiforge.steps import verify as _verify
from amiforge.steps import wait_stop as _wait_stop

resolve = lambda_handler(_resolve.resolve, ev.RESOLVE)                  # state Resolve
launch = lambda_handler(_launch.launch, ev.LAUNCH)                      # state Launch
create_build_stack = lambda_handler(_build_stack.create_build_stack,
                                    ev.CREATE_BUILD_STACK)              # CFN builder
await_build_stack = lambda_handler(_build_stack.await_build_stack,
                                   ev.AWAIT_BUILD_STACK)                # CFN builder
stop_builder = lambda_handler(_build_stack.stop_builder, ev.STOP_BUILDER)  # CFN builder
await_stop = lambda_handler(_wait_stop.register_wait, ev.AWAIT_STOP)   # AwaitStop (token)
instance_state = lambda_handler(_wait_stop.on_instance_state,
                                ev.check_instance_state)               # EC2 stopped, check
verify = lambda_handler(_verify.verify, ev.VERIFY)                      # state Verify
create_image = lambda_handler(_image.create_image, ev.CREATE_IMAGE)     # state CreateImage
await_image = lambda_handler(_image.await_image, ev.AWAIT_IMAGE)        # state AwaitImage
await_approval = lambda_handler(_approval.request_approval,
                                ev.AWAIT_APPROVAL)                     # AwaitApproval (token)
launch_tester = lambda_handler(_test_phase.launch_tester,
                              ev.LAUNCH_TESTER)                 # state LaunchTester
verify_test = lambda_handler(_test_phase.verify_test, ev.VERIFY_TEST)  # VerifyTest, TestNotPassed
distribute = lambda_handler(_distribute.distribute, ev.DISTRIBUTE)      # state Distribute
register = lambda_handler(_register.register, ev.REGISTER)              # state Register
finish = lambda_handler(_finish.finish, ev.FINISH)                      # state Finish
record_failure = lambda_handler(_finish.record_failure, ev.RECORD_FAILURE)  # failure path
cleanup = lambda_handler(_cleanup.cleanup_messages)    # SQS: each message checked by the step
detect = lambda_handler(_detect.detect, ev.DETECT)                      # schedule: new bases
prune = lambda_handler(_prune.prune, ev.PRUNE)                          # schedule: retention
sweep = lambda_handler(_sweep.sweep, ev.SWEEP)                          # schedule: leftovers
