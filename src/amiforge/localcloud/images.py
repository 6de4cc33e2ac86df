"""``release_base``: play a vendor publishing a new base AMI in the local cloud.

The image is registered straight into moto's EC2 backend (the API cannot set an owner
alias or a creation date), public and owned by ``owner``, so that
``describe_images(Owners=["amazon"], Filters=[{"Name": "name", ...}])`` finds it as the
newest of its family. With ``ssm_parameter`` the parameter (for example one under
``/aws/service/``, which the API refuses to write) is overwritten to name it, as AWS
does for its ``latest`` parameters.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

# Owner aliases and the account ids behind them (as describe_images reports them).
OWNER_ACCOUNTS = {
    "amazon": "137112412989",
    "aws-marketplace": "679593333241",
    "microsoft": "801119661308",
}
_PARAMETER_VERSION_LIMIT = 100


def _naive_utc(value: datetime) -> datetime:
    # moto keeps creation dates as naive UTC datetimes.
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def family_glob(name: str) -> str:
    """``al2023-ami-2023.6.2-x86_64`` -> ``al*-ami-*.*.*-x*_*``: the image's release family."""
    return re.sub(r"\d+", "*", name)


def next_creation_date(backend: Any, name: str, owner_id: str) -> datetime:
    """Now, or just after the newest image of the same family and owner if that is later."""
    family = family_glob(name)
    dates = [_naive_utc(ami.creation_date) for ami in list(backend.amis.values())
             if ami.owner_id == owner_id and ami.name and fnmatchcase(ami.name, family)
             and isinstance(ami.creation_date, datetime)]
    now = datetime.now(UTC).replace(tzinfo=None)
    newest = max(dates, default=now - timedelta(seconds=1))
    return max(now, newest + timedelta(seconds=1)).replace(microsecond=0)


def register_base_image(account: str, region: str, name: str, *, owner: str = "amazon",
                        architecture: str = "x86_64", platform: str | None = None,
                        creation_date: datetime | None = None) -> str:
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami
    from moto.ec2.utils import random_ami_id

    backend = ec2_backends[account][region]
    if owner == "self":
        owner_id, alias = account, None
    elif owner.isdigit():
        owner_id, alias = owner, None
    else:
        owner_id, alias = OWNER_ACCOUNTS.get(owner, "000000000000"), owner
    windows = (platform or "").lower() == "windows"
    when = _naive_utc(creation_date) if creation_date else next_creation_date(
        backend, name, owner_id)
    ami_id = random_ami_id()
    ami = Ami(
        backend, ami_id, name=name,
        description=f"{name} (released in the amiforge local cloud)",
        owner_id=owner_id, owner_alias=alias, public=True,
        virtualization_type="hvm", architecture=architecture,
        platform="windows" if windows else None, creation_date=when,
        image_location=f"{alias or owner_id}/{name}", hypervisor="xen",
        root_device_type="ebs", root_device_name="/dev/sda1" if windows else "/dev/xvda",
        region_name=f"{region}a",
    )
    backend.amis[ami_id] = ami
    return ami_id


def point_parameter(account: str, region: str, name: str, image_id: str) -> int:
    """Create or overwrite SSM parameter ``name`` (data type aws:ec2:image); its version."""
    from moto.core.utils import utcnow
    from moto.ssm.models import Parameter, ssm_backends

    backend = ssm_backends[account][region]
    versions = backend._parameters[name]  # loads /aws/service/... defaults on first use
    previous = versions[-1] if versions else None
    if len(versions) >= _PARAMETER_VERSION_LIMIT:
        versions.pop(0)
    version = previous.version + 1 if previous else 1
    parameter: Any = Parameter  # moto types it abstract; it is what moto instantiates
    versions.append(parameter(
        account_id=account, name=name, value=image_id, parameter_type="String",
        description=previous.description if previous else None, allowed_pattern=None,
        keyid=None, last_modified_date=utcnow(), version=version, data_type="aws:ec2:image",
        tier=(previous.tier if previous else None) or "Standard",
    ))
    return version


def release_base(account: str, region: str, name: str, *, owner: str = "amazon",
                 ssm_parameter: str | None = None, architecture: str = "x86_64",
                 platform: str | None = None, creation_date: datetime | None = None) -> str:
    """Register a new base image (and point ``ssm_parameter`` at it); its id."""
    if not name:
        raise ValueError("an image needs a name")
    if architecture not in ("x86_64", "arm64", "i386", "x86_64_mac", "arm64_mac"):
        raise ValueError(f"unknown architecture {architecture!r}; use x86_64 or arm64")
    image_id = register_base_image(account, region, name, owner=owner,
                                   architecture=architecture, platform=platform,
                                   creation_date=creation_date)
    if ssm_parameter:
        point_parameter(account, region, ssm_parameter, image_id)
    return image_id
