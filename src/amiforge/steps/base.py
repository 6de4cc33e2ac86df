"""Resolve recipes' base images: each distinct base is asked of AWS once.

SSM parameter bases are fetched in batches of ten (GetParameters' maximum); filter bases
are grouped by their query key so that a hundred recipes on one vendor image cost one
lookup, and filter bases that differ only in their name pattern (same owners, same
architecture) share one DescribeImages whose name filter lists every pattern, so ten
vendor families cost one call, not ten (``aws/ec2.newest_images`` splits the answer by
pattern as EC2 matches names). A pinned
base (``base.image_id``) resolves to itself: one DescribeImages per distinct pin, only to
check it still exists, so no release can ever change it.

A base parameter is untrusted input twice over: its name comes from a recipe, so only
``/aws/service/`` and the stack's BaseParameterPrefixes are read at all; its value may
be anything, so a value that is not an AMI id is refused naming the parameter and never
passed on (not to plan output, execution input, records or failure reasons).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import ssm as ssm_api
from amiforge.core.model import BaseSpec
from amiforge.core.rules import check_base_parameter, is_ami_id
from amiforge.errors import NotFound
from amiforge.steps.env import StepEnv


def not_an_ami(name: str) -> str:
    """Why a base parameter's value was refused. Never the value: it may be a secret."""
    return (f"SSM parameter {name} does not hold an AMI id (ami- and 8 or 17 hex digits); "
            "its value is not shown. Point base.ssm_parameter at a parameter that holds "
            "the base image's id")


@dataclass(frozen=True)
class ResolvedBase:
    query_key: str
    image_id: str | None
    problem: str | None = None


def resolve_bases(env: StepEnv, bases: Iterable[BaseSpec]) -> dict[str, ResolvedBase]:
    """{query_key: ResolvedBase} for every distinct base among ``bases``."""
    distinct = {b.query_key(): b for b in bases}
    out: dict[str, ResolvedBase] = {}
    by_parameter = {}
    for key, base in distinct.items():
        if base.image_id is not None:
            # Pinned: the base is that image and stays it; only check it still exists
            # (a deregistered pin is a problem to report, not a build to start).
            found = ec2_api.describe_image(env.client("ec2"), base.image_id)
            out[key] = (ResolvedBase(key, base.image_id) if found else ResolvedBase(
                key, None, f"base.image_id {base.image_id} does not exist (or this "
                "account cannot see it)"))
            continue
        if not base.ssm_parameter:
            continue
        refused = check_base_parameter(base.ssm_parameter, env.base_parameter_prefixes)
        if refused:  # never read: the stack's IAM would refuse it too
            out[key] = ResolvedBase(key, None, f"base.ssm_parameter {refused}")
        else:
            by_parameter[base.ssm_parameter] = key
    if by_parameter:
        found, invalid = ssm_api.get_parameters(env.client("ssm"), by_parameter)
        for name, key in by_parameter.items():
            if name not in found:
                out[key] = ResolvedBase(key, None, f"SSM parameter {name} does not exist")
            elif not is_ami_id(found[name]):
                out[key] = ResolvedBase(key, None, not_an_ami(name))
            else:
                out[key] = ResolvedBase(key, found[name])
        del invalid, found  # every missing name is reported above; values go no further
    for (owners, filters), patterns in _filter_groups(distinct).items():
        newest = ec2_api.newest_images(env.client("ec2"), owners=owners,
                                       names=patterns, filters=json.loads(filters))
        matches: dict[str, list[dict[str, Any]]] = {}
        for pattern, keys in patterns.items():
            image = newest[pattern]
            for key in keys:
                matches.setdefault(key, []).extend([image] if image else [])
        for key, images in matches.items():
            image = max(images, key=lambda i: i.get("CreationDate", ""), default=None)
            out[key] = (ResolvedBase(key, image["ImageId"]) if image else
                        ResolvedBase(key, None, f"no available image matches {key}"))
    return out


def _filter_groups(distinct: dict[str, BaseSpec]
                   ) -> dict[tuple[tuple[str, ...], str], dict[str, list[str]]]:
    """Filter bases that differ only in their name pattern, together: {(owners, the other
    filters as JSON): {name pattern: [query keys]}}. One DescribeImages asks for all of a
    group's patterns (EC2 ORs the values of one filter) instead of one call per base."""
    groups: dict[tuple[tuple[str, ...], str], dict[str, list[str]]] = {}
    for key, base in distinct.items():
        if base.ssm_parameter or base.image_id:
            continue
        args = base.describe_images_args()
        names = [f for f in args["Filters"] if f["Name"] == "name"]
        others = [f for f in args["Filters"] if f["Name"] != "name"]
        group = groups.setdefault(
            (tuple(sorted(args["Owners"])), json.dumps(others, sort_keys=True)), {})
        for name in names:
            for pattern in name["Values"]:
                group.setdefault(pattern, []).append(key)
    return groups


def resolve_one(env: StepEnv, base: BaseSpec) -> str:
    resolved = resolve_bases(env, [base])[base.query_key()]
    if not resolved.image_id:
        raise NotFound(f"base image not found: {resolved.problem}",
                       hint="check the recipe's base.ssm_parameter, base.filter or base.image_id")
    return resolved.image_id
