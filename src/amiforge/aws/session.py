"""How amiforge makes boto3 clients: one place, standard retry mode, optional endpoint.

Functions in ``steps/`` and ``core``-adjacent code take clients or an :class:`AwsContext`;
they never build global clients themselves (handlers do, at module level, for warm starts).
``endpoint_url=None`` lets botocore honour the standard ``AWS_ENDPOINT_URL`` variable,
which is how Lambdas running in the local cloud reach it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config

# botocore's standard retry mode: exponential backoff with jitter, retries throttling
# (RequestLimitExceeded, ThrottlingException) and 5xx. 8 attempts rides out EC2's
# token-bucket refill without making a Lambda wait minutes.
RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 8},
    connect_timeout=10,
    read_timeout=70,
    user_agent_extra="amiforge",
)


@dataclass
class AwsContext:
    """Where to talk to AWS: region, optional endpoint, and a cache of clients."""

    region: str | None = None
    endpoint_url: str | None = None
    session: boto3.session.Session | None = None
    _clients: dict[tuple[str, str | None], Any] = field(default_factory=dict, repr=False)

    def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.region)
        if key not in self._clients:
            session = self.session or boto3.session.Session()
            self._clients[key] = session.client(
                service,
                region_name=region or self.region,
                endpoint_url=self.endpoint_url,
                config=RETRY_CONFIG,
            )
        return self._clients[key]

    @property
    def resolved_region(self) -> str:
        session = self.session or boto3.session.Session()
        return self.region or session.region_name or "us-east-1"
