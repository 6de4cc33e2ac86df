"""EC2 tag reads: one resource's tags without a scan of every tag in the region.

moto 5.2.5 reads a resource's tags (``TaggedEC2Resource.get_tags``, which every filter of
a Describe call evaluates, tag filter or not) by asking ``describe_tags`` with a
``resource-id`` filter: a walk over every tag of every resource in the backend, each id
matched with a regular expression. A DescribeSnapshots or DescribeImages over N
resources so costs N times all the tags of the region. In a pytest worker's local cloud,
which keeps thousands of tagged images, snapshots and instances, one DescribeSnapshots
took 0.3 s and this scan was 11% of a test run's CPU.

Here the tags are read from the backend's own map of resource id to tags: the same list
as moto's (an id without wildcards matches only itself), in the same order, with the same
keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from amiforge.localcloud.fills import Fill


def _get_tags(_original: Callable[..., Any]) -> Callable[..., Any]:
    def get_tags(self: Any) -> list[dict[str, str]]:
        from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

        resource_id = self.id
        if not resource_id:
            return []
        tags = self.ec2_backend.tags.get(resource_id)  # a defaultdict: .get adds nothing
        if not tags:
            return []
        kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
        return [{"resource_id": resource_id, "key": key, "value": value,
                 "resource_type": kind} for key, value in tags.items()]

    return get_tags


FILLS = [
    Fill("ec2.tags-by-resource", "moto.ec2.models.core:TaggedEC2Resource", "get_tags",
         _get_tags, "73ba6daeb7cb"),
]
