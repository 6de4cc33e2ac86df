"""The shape of every event a Lambda handler accepts, checked at the boundary.

Events come from the state machine, EventBridge rules and schedules, and from whoever can
invoke a function. A step that trusted its input would meet a malformed one as a
``KeyError`` deep inside (or, worse, iterate over the characters of ``"recipes": "web"``).
So each handler names one schema here, and :func:`check` refuses a bad event before the
step runs, with :class:`~amiforge.errors.InvalidEvent` naming the dotted field, what was
found and what was expected. On the state machine's path that error is caught into
RecordFailure like any other and lands in the build record; a scheduled function's
invocation fails with it in its log.

Schemas check what the steps read; other keys pass (the execution state grows as a build
goes, and EventBridge adds envelope fields). Pure: no AWS here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from amiforge.core.rules import RECIPE_NAME, REGION
from amiforge.errors import InvalidEvent

AMI_ID = re.compile(r"ami-[0-9a-f]{8,17}")
INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")
# Step Functions execution names: 1-80 letters, digits, - and _.
BUILD_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
TOKEN_LIKE = re.compile(r"\S{1,4096}")
STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")


@dataclass(frozen=True)
class Str:
    pattern: re.Pattern[str] | None = None
    what: str = "a string"
    max_len: int = 1024
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Int:
    minimum: int = 0
    what: str = "a whole number"


@dataclass(frozen=True)
class Bool:
    what: str = "true or false"


@dataclass(frozen=True)
class List:
    item: Spec
    what: str = "a list"
    max_items: int = 1000


@dataclass(frozen=True)
class Obj:
    fields: Mapping[str, Spec]
    required: frozenset[str] = field(default_factory=frozenset)
    nullable: frozenset[str] = field(default_factory=frozenset)
    what: str = "a map"


@dataclass(frozen=True)
class Map:
    """A map of names to values, both checked (a copy's region -> its image id)."""
    key: Str
    value: Str
    what: str = "a map"
    max_items: int = 100


Spec = Str | Int | Bool | List | Obj | Map


def obj(required: Mapping[str, Spec], optional: Mapping[str, Spec] | None = None, *,
        nullable: tuple[str, ...] = ()) -> Obj:
    """A map with ``required`` and ``optional`` keys; ``nullable`` ones may also be null."""
    return Obj({**required, **(optional or {})}, frozenset(required), frozenset(nullable))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


def _problem(value: Any, spec: Spec, path: str) -> str | None:
    """The first thing wrong with ``value`` at ``path``, or None."""
    if isinstance(spec, Obj):
        if not isinstance(value, Mapping):
            return f"{path or 'the event'} must be {spec.what}, got {_shown(value)}"
        for key in sorted(spec.required):
            if key not in value:
                return f"{_join(path, key)} is missing"
        for key, sub in spec.fields.items():
            if key not in value or (value[key] is None and key in spec.nullable):
                continue
            found = _problem(value[key], sub, _join(path, key))
            if found:
                return found
        return None
    if isinstance(spec, Map):
        if not isinstance(value, Mapping):
            return f"{path} must be {spec.what}, got {_shown(value)}"
        if len(value) > spec.max_items:
            return f"{path} has {len(value)} entries, at most {spec.max_items} are accepted"
        for key, item in value.items():
            found = _problem(key, spec.key, f"{path} key") or _problem(item, spec.value,
                                                                       _join(path, str(key)))
            if found:
                return found
        return None
    if isinstance(spec, List):
        if not isinstance(value, list):
            return f"{path} must be {spec.what}, got {_shown(value)}"
        if len(value) > spec.max_items:
            return f"{path} has {len(value)} items, at most {spec.max_items} are accepted"
        for index, item in enumerate(value):
            found = _problem(item, spec.item, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(spec, Bool):
        return None if isinstance(value, bool) else f"{path} must be {spec.what}, got {_shown(value)}"
    if isinstance(spec, Int):
        # JSON numbers arrive as int; the state machine may pass a numeric string.
        if isinstance(value, bool) or not isinstance(value, (int, str)) \
                or (isinstance(value, str) and not (value.isascii() and value.isdigit())):
            return f"{path} must be {spec.what}, got {_shown(value)}"
        if int(value) < spec.minimum:
            return f"{path} must be at least {spec.minimum}, got {_shown(value)}"
        return None
    if not isinstance(value, str):
        return f"{path} must be {spec.what}, got {_shown(value)}"
    if len(value) > spec.max_len:
        return f"{path} is {len(value)} characters long, at most {spec.max_len} are accepted"
    if spec.choices and value not in spec.choices:
        return f"{path} must be one of {', '.join(spec.choices)}, got {_shown(value)}"
    if spec.pattern is not None and not spec.pattern.fullmatch(value):
        return f"{path} must be {spec.what}, got {_shown(value)}"
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def check(event: Any, schema: Obj, name: str) -> None:
    """Raise :class:`InvalidEvent` naming the field if ``event`` does not fit ``schema``."""
    found = _problem(event, schema, "")
    if found:
        raise InvalidEvent(f"{name} event refused: {found}",
                           hint="this function is invoked by amiforge's own state machine "
                                "and rules; see docs/architecture.md for its input")


# -- the pieces -------------------------------------------------------------------------------

RECIPE = Str(RECIPE_NAME, "a recipe name (1-40 lowercase letters, digits, hyphens)", 40)
BUILD = Str(BUILD_ID, "a build id (1-80 letters, digits, - and _)", 80)
AMI = Str(AMI_ID, "an AMI id like ami-0123456789abcdef0", 21)
INSTANCE = Str(INSTANCE_ID, "an instance id like i-0123456789abcdef0", 19)
HASH = Str(re.compile(r"[0-9a-f]{8,128}"), "a recipe hash (hex digits)", 128)
TRIGGER = Str(re.compile(r"[a-z0-9_:.-]{1,64}"), "a trigger name like schedule", 64)

BUILD_STATE = obj(
    {"recipe": RECIPE, "build_id": BUILD, "recipe_hash": HASH, "base_ami": AMI},
    {"root_device": Str(re.compile(r"/dev/[a-z0-9]{1,32}"), "a device name like /dev/xvda"),
     "root_volume_gb": Int(1), "retries": Int(0), "git_commit": Str(max_len=256),
     "regions": List(Str(REGION, "a region like eu-west-1", 32), "a list of regions"),
     "share_with": List(Str(re.compile(r"\d{12}"), "an account id (12 digits)", 12),
                        "a list of account ids"),
     "approval": Str(choices=("none", "manual")), "rolls_out": Bool(),
     "tests": Bool(), "copies": Bool()},
    nullable=("git_commit",))
LAUNCHED = obj({"instance_id": INSTANCE, "attempt": Int(1)})
IMAGE = obj({"image_id": AMI}, {"polls": Int(0)})
TIMING = obj({"timeout_seconds": Int(1), "poll_seconds": Int(1), "max_image_polls": Int(1)},
             {"approval_timeout_seconds": Int(1), "image_timeout_seconds": Int(1)})
REGION_NAME = Str(REGION, "a region like eu-west-1", 32)
# Distribute's answer: every region's image (the home one included) and those pending.
COPIES = obj({"images": Map(REGION_NAME, AMI, "a map of regions to image ids")},
             {"pending": List(REGION_NAME, "a list of regions"), "ready": Bool()})
RECIPE_LIST = List(RECIPE, "a list of recipe names")

# -- one schema per event type ------------------------------------------------------------

RESOLVE = obj({"build_id": BUILD,
               "input": obj({"recipe": RECIPE},
                            {"recipe_hash": HASH, "base_ami": AMI, "trigger": TRIGGER},
                            nullable=("recipe_hash", "base_ami"))},
              {"execution_arn": Str(max_len=2048)}, nullable=("execution_arn",))
LAUNCH = obj({"build": BUILD_STATE}, {"launch": obj({}, {"attempt": Int(0)})})
CREATE_BUILD_STACK = obj({"build": BUILD_STATE})
AWAIT_BUILD_STACK = obj({"build": BUILD_STATE, "timing": TIMING,
                         "stack": obj({"stack_name": Str(STACK_NAME, "a stack name", 128)},
                                      {"polls": Int(0)})})
STOP_BUILDER = obj({"build": BUILD_STATE,
                    "stack": obj({"instance_id": INSTANCE})})
# AwaitStop also passes the build's state (``build``, ``launch``): the stop event's
# invocation judges the builder and creates the image with it (steps/stop_verdict.py).
AWAIT_STOP = obj({"token": Str(TOKEN_LIKE, "a task token", 4096), "recipe": RECIPE,
                  "build_id": BUILD, "instance_id": INSTANCE},
                 {"role": Str(choices=("builder", "tester")), "build": BUILD_STATE,
                  "launch": LAUNCHED})
# The AwaitApproval task (release.approval: manual): its token and the AVAILABLE image.
AWAIT_APPROVAL = obj({"token": Str(TOKEN_LIKE, "a task token", 4096), "build": BUILD_STATE,
                      "image": IMAGE, "timeout_seconds": Int(1)})
VERIFY = obj({"build": BUILD_STATE, "launch": LAUNCHED})
CREATE_IMAGE = obj({"build": BUILD_STATE, "launch": obj({"instance_id": INSTANCE})})
# The AwaitImage and AwaitCopies tasks (steps/image_wait.py): the token, whose build, and
# the image (kind image) or Distribute's copies (kind copies) to wait for.
AWAIT_IMAGE = obj({"token": Str(TOKEN_LIKE, "a task token", 4096),
                   "kind": Str(choices=("image", "copies")),
                   "build": obj({"recipe": RECIPE, "build_id": BUILD}),
                   "image": obj({"image_id": AMI}, {"name": Str(max_len=128)})},
                  {"distribution": COPIES})
DISTRIBUTE = obj({"build": BUILD_STATE, "image": IMAGE})
REGISTER = obj({"build": BUILD_STATE, "image": IMAGE})
FINISH = obj({"build": BUILD_STATE}, {"image": obj({}, {"image_id": AMI})})
# The rollout (steps/rollout.py, steps/rollout_back.py): after Register's result.
_RESULT = obj({}, {"latest": Str(max_len=1024)})
_REFRESH = obj({"auto_scaling_group": Str(max_len=255), "region": Str(REGION, "a region", 32),
                "refresh_id": Str(max_len=64), "outcome": Str(
                    choices=("running", "succeeded", "failed"))})
ROLL_OUT = obj({"build": BUILD_STATE, "result": _RESULT})
_ROLLOUT = obj({"refreshes": List(_REFRESH, "a list of instance refreshes"),
                "timeout_seconds": Int(1)})
# AwaitRefresh parks its token (steps/refresh_wait.py); RefreshTimedOut follows its timeout.
AWAIT_REFRESH = obj({"token": Str(TOKEN_LIKE, "a task token", 4096),
                     "build": obj({"recipe": RECIPE, "build_id": BUILD}), "rollout": _ROLLOUT})
REFRESH_TIMED_OUT = obj({"timed_out": Bool(), "build": BUILD_STATE, "rollout": _ROLLOUT})
# AWS's refresh events (only what the step reads; it reads the refresh again itself).
REFRESH_STATE_CHANGE = obj({"region": REGION_NAME,
                            "detail-type": Str(re.compile(r"[A-Za-z0-9 ]{1,128}"),
                                               "an event detail-type"),
                            "detail": obj({"AutoScalingGroupName": Str(max_len=255),
                                           "InstanceRefreshId": Str(max_len=64)})})
REFRESH_CHECK = obj({"check": Str(choices=("refreshes",))})
ROLL_BACK_RELEASE = obj({"build": BUILD_STATE},
                        {"rollout": obj({}, {"reason": Str(max_len=4096)}),
                         "rollout_error": obj({}, {"Error": Str(max_len=1024),
                                                   "Cause": Str(max_len=262_144)},
                                              nullable=("Cause",))})
# The test phase (steps/test_phase.py): LaunchTester, then VerifyTest (or TestNotPassed,
# with the error AwaitTest or VerifyTest raised as ``failed_test``).
TESTER = obj({"instance_id": INSTANCE, "timeout_seconds": Int(1)},
             {"instance_type": Str(max_len=64), "started_at": Str(max_len=64),
              "enabled": Bool()})
LAUNCH_TESTER = obj({"build": BUILD_STATE, "image": IMAGE}, {"timing": TIMING})
VERIFY_TEST = obj({"build": BUILD_STATE, "test": TESTER},
                  {"failed_test": obj({}, {"Error": Str(max_len=1024),
                                           "Cause": Str(max_len=262_144)},
                                      nullable=("Cause",))})
# The failure path takes what it can get: a build that failed in Resolve has no build yet.
RECORD_FAILURE = obj({}, {"build": obj({}, {"recipe": RECIPE, "build_id": BUILD}),
                          "error": obj({}, {"Error": Str(max_len=1024),
                                            "Cause": Str(max_len=262_144)},
                                       nullable=("Cause",)),
                          "launch": obj({}, {"instance_id": INSTANCE})})
# EventBridge: an EC2 state change, or the stop check's schedule ({"check": "waiting"}).
INSTANCE_STATE_CHANGE = obj({"detail": obj({"instance-id": INSTANCE,
                                            "state": Str(re.compile(r"[a-z-]{1,32}"),
                                                         "an EC2 instance state")})})
STOP_CHECK = obj({"check": Str(choices=("waiting",))})
# EventBridge: EC2's "EC2 AMI State Change" (any image of the account and region), or the
# image check's schedule ({"check": "images"}). The state is re-read from EC2, never trusted.
IMAGE_STATE_CHANGE = obj({"region": REGION_NAME,
                          "detail": obj({"ImageId": AMI,
                                         "State": Str(re.compile(r"[a-z-]{1,32}"),
                                                      "an image state")},
                                        {"ErrorReason": Str(max_len=4096)},
                                        nullable=("ErrorReason",))})
IMAGE_CHECK = obj({"check": Str(choices=("images",))})
DETECT = obj({}, {"recipes": RECIPE_LIST, "trigger": TRIGGER}, nullable=("recipes",))
PRUNE = obj({}, {"recipes": RECIPE_LIST, "dry_run": Bool(), "trigger": TRIGGER},
            nullable=("recipes",))
SWEEP = obj({}, {"dry_run": Bool(), "trigger": TRIGGER})


# The scheduled functions' events, as their steps read them once checked (every key
# optional; the CLI and the schedule build the same shapes).
class DetectEvent(TypedDict, total=False):
    recipes: Sequence[str] | None  # only these (a publish's); None or absent: every one
    trigger: str  # "schedule" by default; "publish", "cli"


class PruneEvent(TypedDict, total=False):
    recipes: Sequence[str] | None  # only these; None or absent: every published recipe
    dry_run: bool
    trigger: str


class SweepEvent(TypedDict, total=False):
    dry_run: bool
    trigger: str


def check_image_state(event: Any) -> None:
    """The image-state function serves two event types: pick the schema by shape."""
    if isinstance(event, Mapping) and "check" in event:
        check(event, IMAGE_CHECK, "image-state (image check)")
    else:
        check(event, IMAGE_STATE_CHANGE, "image-state")


def check_refresh_wait(event: Any) -> None:
    """The await-refresh function serves four callers: pick the schema by shape."""
    if isinstance(event, Mapping) and "token" in event:
        check(event, AWAIT_REFRESH, "await-refresh")
    elif isinstance(event, Mapping) and "check" in event:
        check(event, REFRESH_CHECK, "await-refresh (refresh check)")
    elif isinstance(event, Mapping) and "timed_out" in event:
        check(event, REFRESH_TIMED_OUT, "await-refresh (timed out)")
    else:
        check(event, REFRESH_STATE_CHANGE, "await-refresh (refresh event)")


def check_instance_state(event: Any) -> None:
    """The instance-state function serves two event types: pick the schema by shape."""
    if isinstance(event, Mapping) and "check" in event:
        check(event, STOP_CHECK, "instance-state (stop check)")
    else:
        check(event, INSTANCE_STATE_CHANGE, "instance-state")
