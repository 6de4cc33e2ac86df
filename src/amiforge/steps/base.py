"""Resolve recipes' base images: each distinct base is asked of AWS once.

SSM parameter bases are fetched in batches of ten; filter bases are grouped by their
query key so that a hundred recipes on one vendor image cost one DescribeImages. A pinned
base (``base.image_id``) resolves to itself: one DescribeImages per distinct pin, only to
check it still exists, so no release can ever change it.

A base parameter is untrusted input twice over: its name comes from a recipe, so only
``/aws/service/`` and the stack's BaseParameterPrefixes are read at all; its value may
be anything, so a value that is not an AMI id is refused naming the parameter and never
passed on (not to plan output, execution input, records or failure reasons).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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
    for key, base in distinct.items():
        if base.ssm_parameter or base.image_id:
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
                       hint="check the recipe's base.ssm_parameter, base.filter or base.image_id")
    return resolved.image_id
