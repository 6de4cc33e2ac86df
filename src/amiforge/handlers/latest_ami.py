"""Lambda entry point: the ``Custom::LatestAmi`` responder.

Properties: ``Recipe`` (required), ``Region`` (optional). Attributes: ImageId, ImageName,
BuildId, CreationDate. Physical id: the AMI id, so a rebuilt image replaces the resource
and dependants update. Delete touches nothing. Every request, malformed ones included, is
answered on its ResponseURL (see :mod:`amiforge.custom_resource.protocol`).
"""

from typing import Any

from amiforge.custom_resource.latest_ami import respond
from amiforge.handlers.runtime import logger, step_env


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    body = respond(event, step_env(), seconds_left=remaining() / 1000 if remaining else None)
    logger.info("answered", extra={k: body.get(k) for k in ("Status", "Reason",
                                                            "PhysicalResourceId", "Data")})
    return body
