"""The one errors module.

Every error a user can cause or meet derives from :class:`AmiforgeError`. The CLI maps
it to one line and an exit code; Step Functions matches the class name (Lambda's
``errorType``) in its Retry/Catch rules, so class names here are part of the state
machine's contract.

Branches:
  InvalidInput      - the user gave us something wrong (exit 2): a recipe, a flag, a value.
  OperationFailed   - a valid request that did not succeed (exit 1): a failed build, a stack.
  TransientAwsError - throttling or eventual consistency; safe to retry (Step Functions does).

The state machine's Retry/Catch rules name ``TransientAwsError``, ``LaunchThrottled``,
``ConsoleNotReady`` and ``NoCapacity``: renaming one breaks a deployed state machine.
Modules that raised them first (aws/pacing.py, aws/ec2.py, aws/usage.py, steps/verify.py)
re-export them.
"""

from __future__ import annotations


class AmiforgeError(Exception):
    """Base of every amiforge error. ``str(err)`` is a complete one-line message."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class InvalidInput(AmiforgeError):
    """Bad input from the user: names the file, field or value and what to do instead."""

    exit_code = 2


class Problem:
    """One validation finding: where (file and field) and what is wrong."""

    __slots__ = ("where", "field", "message")

    def __init__(self, where: str, field: str | None, message: str) -> None:
        self.where = where
        self.field = field
        self.message = message

    def __str__(self) -> str:
        loc = f"{self.where}: {self.field}" if self.field else self.where
        return f"{loc}: {self.message}"

    def __repr__(self) -> str:
        return f"Problem({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Problem) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


class RecipeInvalid(InvalidInput):
    """One or more recipes failed validation; ``problems`` lists every finding."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        first = str(self.problems[0]) if self.problems else "invalid recipe"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(first + more)


class InvalidEvent(InvalidInput):
    """A Lambda was invoked with an event that does not fit its schema (core/events.py)."""


class NotFound(InvalidInput):
    """A named thing (recipe, stack, image) does not exist."""


class OperationFailed(AmiforgeError):
    """A valid request that did not succeed (a build failed, a stack rolled back)."""

    exit_code = 1


class BuildsStillRunning(OperationFailed):
    """A wait for builds ended (``--timeout``, Ctrl-C) while they go on running."""


class BuildFailed(OperationFailed):
    """The build instance reported failure, never stopped, or the image failed."""


class StackFailed(OperationFailed):
    """A CloudFormation stack operation failed."""


class TransientAwsError(AmiforgeError):
    """Throttling, 5xx or eventual consistency: the caller may retry with backoff."""


class AwsCallFailed(OperationFailed):
    """An AWS call failed for a reason retrying will not fix."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        self.operation = operation
        self.code = code
        super().__init__(f"{operation} failed: {code}: {message}")


class NoCapacity(OperationFailed):
    """No instance type in the recipe's list could be launched."""


class LaunchThrottled(TransientAwsError):
    """amiforge's RunInstances budget is spent for now; the state machine backs off."""


class ConsoleNotReady(TransientAwsError):
    """No result marker in the console output yet."""


class UsageUnknown(OperationFailed):
    """Which candidates a region uses cannot be known; ``reason`` says why. The deletion
    gate counts an unknown use as a use: nothing there is removed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
