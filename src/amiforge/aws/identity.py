"""STS adapter: who is calling (recorded on a rollback or release as ``by``)."""

from __future__ import annotations

import getpass
import logging
from typing import Any

from botocore.exceptions import BotoCoreError

from amiforge.aws.errors import aws_call
from amiforge.errors import AmiforgeError

log = logging.getLogger(__name__)


def caller(sts: Any) -> str:
    """The caller's ARN (GetCallerIdentity needs no permission); if STS cannot answer
    (no network to it, an endpoint without STS), the local user name, so a rollback is
    never refused for want of a name."""
    try:
        with aws_call("GetCallerIdentity"):
            return str(sts.get_caller_identity()["Arn"])
    except (AmiforgeError, BotoCoreError) as err:
        log.warning("GetCallerIdentity failed (%s); recording the local user name", err)
    try:
        return f"local user {getpass.getuser()}"
    except Exception:  # no user name in this environment (a bare container)
        return "unknown"
