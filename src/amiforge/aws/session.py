"""How amiforge makes boto3 clients: one place, standard retry mode, optional endpoint.

Functions in ``steps/`` and ``core``-adjacent code take clients or an :class:`AwsContext`;
they never build global clients themselves (handlers do, at module level, for warm starts).
``endpoint_url=None`` lets botocore honour the standard ``AWS_ENDPOINT_URL`` variable,
which is how Lambdas running in the local cloud reach it.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import boto3  # type: ignore[import-untyped]
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import ProfileNotFound

from amiforge.errors import InvalidInput

# botocore's standard retry mode: exponential backoff with jitter, retries throttling
# (RequestLimitExceeded, ThrottlingException) and 5xx. 8 retries after the first attempt
# (botocore's max_attempts counts retries) ride out EC2's token-bucket refill without
# making a Lambda wait minutes.
RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 8},
    connect_timeout=10,
    read_timeout=70,
    user_agent_extra="amiforge",
)


# S3: presigned URLs (build.files, aws/assets.py) must be SigV4 (buckets made since 2020
# refuse SigV2, botocore's presigning default) on the bucket's regional host (the global
# one answers a new bucket with a redirect the signature does not survive). API calls
# are SigV4 and virtual-hosted anyway; a custom endpoint (the local cloud) stays
# path-style.
S3_CONFIG = Config(signature_version="s3v4", s3={"addressing_style": "virtual"})
S3_CUSTOM_ENDPOINT_CONFIG = Config(signature_version="s3v4")


class _PathList(list[str]):
    """A loader's search paths: boto3 appends its own data directory each time a Session
    is made over the loader, so a shared loader would gain one entry per Session."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


_LOADERS: dict[str | None, botocore.loaders.Loader] = {}
_LOADERS_LOCK = threading.Lock()


def shared_loader(data_path: str | None) -> botocore.loaders.Loader:
    """This process's botocore data loader for ``AWS_DATA_PATH`` ``data_path``.

    Each botocore Session otherwise has a loader of its own and parses the JSON service
    models again: about 0.2 s for a first EC2 client, against 0.03 s with the models
    parsed already. A command, a test or the local cloud making several contexts parses
    each model once. The loader only caches what it read from botocore's data files,
    which are the same for every Session of the process.
    """
    with _LOADERS_LOCK:
        loader = _LOADERS.get(data_path)
        if loader is None:
            loader = botocore.loaders.create_loader(data_path)
            # botocore keeps the list as _search_paths; search_paths returns it as is
            setattr(loader, "_search_paths", _PathList(loader.search_paths))  # noqa: B010
            _LOADERS[data_path] = loader
        return loader


def new_session(profile: str | None = None) -> boto3.session.Session:
    """A boto3 Session for ``profile`` over this process's shared data loader.
    Raises botocore's ProfileNotFound for a profile that is not configured."""
    core = botocore.session.Session(profile=profile)
    loader = shared_loader(core.get_config_variable("data_path"))
    core.register_component("data_loader", loader)
    return boto3.session.Session(botocore_session=core, profile_name=profile)


# us-east-1, eu-west-1, ap-southeast-2, us-gov-west-1, cn-north-1, us-isob-east-1
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


def check_endpoint_url(url: str) -> None:
    """Refuse an endpoint botocore would reject with a traceback (``127.0.0.1:4566``) or
    try for seconds before failing (``htp://x``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"--endpoint-url {url!r} is not an http(s) URL: write it with its scheme, like "
            "http://127.0.0.1:4566 (or unset AWS_ENDPOINT_URL to use AWS itself)")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise InvalidInput(f"--endpoint-url {url!r} has a port that is not a number: "
                           "write it like http://127.0.0.1:4566") from None


def check_region(region: str) -> None:
    if not _REGION.fullmatch(region):
        raise InvalidInput(f"region {region!r} is not an AWS region name: pass --region "
                           "(or set AWS_REGION) to a name like eu-west-1")


@dataclass
class AwsContext:
    """Where to talk to AWS: region, optional endpoint and profile, and a cache of clients.

    The endpoint, region and profile are checked when the first client is made, so a
    command that needs no AWS (``validate``) never fails on them.
    """

    region: str | None = None
    endpoint_url: str | None = None
    session: boto3.session.Session | None = None
    profile: str | None = None
    # Merged over RETRY_CONFIG (e.g. short timeouts for shell completion).
    config: Config | None = None
    _clients: dict[tuple[str, str | None], Any] = field(default_factory=dict, repr=False)

    def _session(self) -> boto3.session.Session:
        if self.session is None:
            try:
                self.session = new_session(self.profile)
            except ProfileNotFound:
                raise InvalidInput(f"AWS profile {self.profile!r} is not configured: check "
                                   "--profile / AWS_PROFILE against `aws configure "
                                   "list-profiles`") from None
        return self.session

    def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.region)
        if key not in self._clients:
            if self.endpoint_url:
                check_endpoint_url(self.endpoint_url)
            session = self._session()
            wanted = region or self.region or session.region_name
            if wanted:
                check_region(wanted)
            config = RETRY_CONFIG.merge(self.config) if self.config else RETRY_CONFIG
            if service == "s3":
                custom = (self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3")
                          or os.environ.get("AWS_ENDPOINT_URL"))
                config = config.merge(S3_CUSTOM_ENDPOINT_CONFIG if custom else S3_CONFIG)
            self._clients[key] = session.client(
                service,
                region_name=region or self.region,
                endpoint_url=self.endpoint_url,
                config=config,
            )
        return self._clients[key]

    @property
    def resolved_region(self) -> str:
        session = self._session()
        return self.region or session.region_name or "us-east-1"
