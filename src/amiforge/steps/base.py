"""Resolve recipes' base images: each distinct base is asked of AWS once.

SSM parameter bases are fetched in batches of ten; filter bases are grouped by their
query key so that a hundred recipes on one vendor image cost one DescribeImages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import ssm as ssm_api
from amiforge.core.model import BaseSpec
from amiforge.errors import NotFound
from amiforge.steps.env import StepEnv


@dataclass(frozen=True)
class ResolvedBase:
    query_key: str
    image_id: str | None
    problem: str | None = None


def resolve_bases(env: StepEnv, bases: Iterable[BaseSpec]) -> dict[str, ResolvedBase]:
    """{query_key: ResolvedBase} for every distinct base among ``bases``."""
    distinct = {b.query_key(): b for b in bases}
    out: dict[str, ResolvedBase] = {}
    by_parameter = {b.ssm_parameter: key for key, b in distinct.items() if b.ssm_parameter}
    if by_parameter:
        found, invalid = ssm_api.get_parameters(env.client("ssm"), by_parameter)
        for name, key in by_parameter.items():
            if name in found:
                out[key] = ResolvedBase(key, found[name])
            else:
                out[key] = ResolvedBase(key, None, f"SSM parameter {name} does not exist")
        del invalid  # every missing name is reported above
    for key, base in distinct.items():
        if base.ssm_parameter:
            continue
        args = base.describe_images_args()
        image = ec2_api.newest_image(env.client("ec2"), owners=args["Owners"],
                                     filters=args["Filters"])
        out[key] = (ResolvedBase(key, image["ImageId"]) if image else
                    ResolvedBase(key, None, f"no available image matches {key}"))
    return out


def resolve_one(env: StepEnv, base: BaseSpec) -> str:
    resolved = resolve_bases(env, [base])[base.query_key()]
    if not resolved.image_id:
        raise NotFound(f"base image not found: {resolved.problem}",
                       hint="check the recipe's base.ssm_parameter or base.filter")
    return resolved.image_id
