"""The CLI's shared options, passed to every command as ``click`` context object."""

from __future__ import annotations

from dataclasses import dataclass, field

from amiforge.ops.connect import AwsContext

DEFAULT_STACK = "amiforge"


@dataclass
class CliContext:
    endpoint_url: str | None = None
    region: str | None = None
    stack: str = DEFAULT_STACK
    output: str = "text"
    profile: str | None = None
    aws: AwsContext = field(init=False)

    def __post_init__(self) -> None:
        self.aws = AwsContext(region=self.region, endpoint_url=self.endpoint_url,
                              profile=self.profile)
