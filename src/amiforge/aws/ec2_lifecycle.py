"""EC2 calls for cleanup and retention: tag-filtered listings, deletion, deprecation.

Thin, like :mod:`amiforge.aws.ec2` (which it builds on): AWS mechanics, no decisions.
Every listing here is filtered by amiforge's tags on the server side, so the sweeper
never pages through an account's untagged instances, images or snapshots.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from amiforge.aws.errors import aws_call
from amiforge.core.deletion import valid_build_id
from amiforge.core.in_use import INSTANCE_STATES
from amiforge.core.tags import BUILD_ID, BUILDER, ROLE, TESTER
from amiforge.errors import InvalidInput

LIVE_STATES = ("pending", "running", "stopping", "stopped")
# Everything but terminated (core/in_use.py): a shutting-down instance holds its image.
IN_USE_STATES = INSTANCE_STATES
_FILTER_VALUES = 200  # values per DescribeInstances filter


def builders(ec2: Any) -> list[dict[str, Any]]:
    """Live instances tagged ``amiforge:role=builder`` or ``tester`` (a test instance is
    swept exactly like a builder: it belongs to its build)."""
    filters = [{"Name": f"tag:{ROLE}", "Values": [BUILDER, TESTER]},
               {"Name": "instance-state-name", "Values": list(LIVE_STATES)}]
    out: list[dict[str, Any]] = []
    with aws_call("DescribeInstances"):
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page.get("Reservations", []):
                out.extend(reservation.get("Instances", []))
    return out


def _build_filter(build_id: str | None) -> list[dict[str, Any]]:
    if build_id is None:
        return [{"Name": "tag-key", "Values": [BUILD_ID]}]
    # EC2 filters treat * and ? as wildcards: only an exact build id may become a value.
    if not valid_build_id(build_id):
        raise InvalidInput(f"build id {build_id!r} is not of the exact build-id format",
                           hint="a filter is never built from a pattern")
    return [{"Name": f"tag:{BUILD_ID}", "Values": [build_id]}]


def build_images(ec2: Any, build_id: str | None = None) -> list[dict[str, Any]]:
    """Images this account owns that carry ``amiforge:build-id`` (= ``build_id`` if given),
    deprecated ones included."""
    filters = _build_filter(build_id)  # refused before any call if not exact
    with aws_call("DescribeImages"):
        images: list[dict[str, Any]] = ec2.describe_images(
            Owners=["self"], Filters=filters, IncludeDeprecated=True).get("Images", [])
    return images


def build_snapshots(ec2: Any, build_id: str | None = None) -> list[dict[str, Any]]:
    """Snapshots this account owns that carry ``amiforge:build-id`` (= ``build_id`` if given)."""
    filters = _build_filter(build_id)  # refused before any call if not exact
    out: list[dict[str, Any]] = []
    with aws_call("DescribeSnapshots"):
        for page in ec2.get_paginator("describe_snapshots").paginate(
                OwnerIds=["self"], Filters=filters):
            out.extend(page.get("Snapshots", []))
    return out


def images_and_snapshots_of_builds(ec2: Any, build_ids: Iterable[str]
                                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(images, snapshots) this account owns tagged with any of ``build_ids``: one
    DescribeImages and one DescribeSnapshots per 200 builds, where :func:`build_images` and
    :func:`build_snapshots` make one each per build."""
    ids = sorted(set(build_ids))
    images: list[dict[str, Any]] = []
    snapshots: list[dict[str, Any]] = []
    for start in range(0, len(ids), _FILTER_VALUES):
        chunk = ids[start:start + _FILTER_VALUES]
        for build_id in chunk:
            _build_filter(build_id)  # refused before any call if not exact
        filters = [{"Name": f"tag:{BUILD_ID}", "Values": chunk}]
        with aws_call("DescribeImages"):
            images.extend(ec2.describe_images(Owners=["self"], Filters=filters,
                                              IncludeDeprecated=True).get("Images", []))
        with aws_call("DescribeSnapshots"):
            for page in ec2.get_paginator("describe_snapshots").paginate(
                    OwnerIds=["self"], Filters=filters):
                snapshots.extend(page.get("Snapshots", []))
    return images, snapshots


def instances_using(ec2: Any, image_ids: Iterable[str]) -> list[dict[str, Any]]:
    """Instances launched from any of ``image_ids``, in any state but terminated."""
    ids = sorted(set(image_ids))
    out: list[dict[str, Any]] = []
    for start in range(0, len(ids), _FILTER_VALUES):
        filters = [{"Name": "image-id", "Values": ids[start:start + _FILTER_VALUES]},
                   {"Name": "instance-state-name", "Values": list(IN_USE_STATES)}]
        with aws_call("DescribeInstances"):
            for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
                for reservation in page.get("Reservations", []):
                    out.extend(reservation.get("Instances", []))
    return out


def enable_deprecation(ec2: Any, image_id: str, when: datetime) -> None:
    with aws_call("EnableImageDeprecation"):
        ec2.enable_image_deprecation(ImageId=image_id, DeprecateAt=when)
