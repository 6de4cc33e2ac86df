"""The cleanup queue's message schema. Pure. Messages are untrusted input.

Anyone allowed ``sqs:SendMessage`` on the queue can write one, so a message is checked
before anything is looked up: a JSON object of known fields only, a recipe name and a
build id of their exact formats (the build id one of that recipe's: a build id is
``<recipe>-<key digest>...``), an optional image id, status and region list of their
formats. A build id is later used as an EC2 tag-filter value, where ``*`` and ``?`` are
wildcards: the exact formats are what keep ``{"build_id": "h1*"}`` from matching other
builds. :func:`parse` raises :class:`BadMessage` with the reason, which the consumer
sends, with the message, to the dead-letter queue.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from amiforge.core.deletion import valid_build_id, valid_recipe_name

MAX_BYTES = 8192
FIELDS = frozenset({"recipe", "build_id", "status", "keep_image", "regions"})
STATUSES = frozenset({"AVAILABLE", "FAILED", "CANCELLED"})
IMAGE_ID = re.compile(r"ami-[0-9a-f]{8,17}")
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")
MAX_REGIONS = 32


class BadMessage(ValueError):
    """A cleanup message that must not be acted on; the text says why."""


@dataclass(frozen=True)
class CleanupMessage:
    recipe: str
    build_id: str
    status: str | None = None
    keep_image: str | None = None
    regions: tuple[str, ...] = ()


def parse(body: object) -> CleanupMessage:
    if not isinstance(body, str):
        raise BadMessage("the body is not text")
    if len(body.encode("utf-8", "replace")) > MAX_BYTES:
        raise BadMessage(f"the body is larger than {MAX_BYTES} bytes")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as err:
        raise BadMessage(f"the body is not JSON ({err.msg})") from None
    if not isinstance(data, dict):
        raise BadMessage("the body is not a JSON object")
    unknown = sorted(str(k) for k in data if k not in FIELDS)
    if unknown:
        raise BadMessage(f"unknown field(s) {', '.join(unknown)}; known: "
                         + ", ".join(sorted(FIELDS)))
    recipe, build_id = data.get("recipe"), data.get("build_id")
    if not isinstance(recipe, str) or not valid_recipe_name(recipe):
        raise BadMessage(f"recipe {recipe!r} is not a recipe name ([a-z0-9][a-z0-9-]{{0,39}})")
    if not isinstance(build_id, str) or not build_id:
        raise BadMessage("build_id is missing or not a string")
    if not valid_build_id(build_id):
        raise BadMessage(f"build_id {build_id!r} is not a build id (patterns are refused)")
    if not valid_build_id(build_id, recipe):
        raise BadMessage(f"build_id {build_id!r} is not a build of recipe {recipe!r}")
    status = data.get("status")
    if status is not None and status not in STATUSES:
        raise BadMessage(f"status {status!r} is not one of {', '.join(sorted(STATUSES))}")
    keep = data.get("keep_image")
    if keep is not None and not (isinstance(keep, str) and IMAGE_ID.fullmatch(keep)):
        raise BadMessage(f"keep_image {keep!r} is not an image id")
    regions = data.get("regions", [])
    if regions is None:
        regions = []
    if not isinstance(regions, list) or len(regions) > MAX_REGIONS or not all(
            isinstance(r, str) and REGION.fullmatch(r) for r in regions):
        raise BadMessage(f"regions {regions!r} is not a list of region names")
    return CleanupMessage(recipe=recipe, build_id=build_id, status=status, keep_image=keep,
                          regions=tuple(regions))
