"""Launch template adapter for the rollout: read a template's default version, add a
version with a new image, make a version the default. Thin: which templates move is
:func:`amiforge.core.rollout.decide_template`'s decision.

Reading which images *use* a template (every version) is retention's scan
(:mod:`amiforge.aws.usage`); this module only writes, and reads what it writes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amiforge.aws.errors import ClientError, aws_call, error_code, translate
from amiforge.core.rollout import LAUNCH_TEMPLATE_ID

GONE = frozenset({"InvalidLaunchTemplateId.NotFound", "InvalidLaunchTemplateName.NotFound",
                  "InvalidLaunchTemplateName.NotFoundException",
                  "InvalidLaunchTemplateId.Malformed"})


@dataclass(frozen=True)
class DefaultVersion:
    """A template's current default version: its number and the ImageId it launches
    (an AMI id, or ``resolve:ssm:NAME``), and the template's tags."""

    template_id: str
    name: str
    version: int
    image_id: str | None
    tags: dict[str, str]


def _by(template: str) -> dict[str, Any]:
    return ({"LaunchTemplateIds": [template]} if LAUNCH_TEMPLATE_ID.fullmatch(template)
            else {"LaunchTemplateNames": [template]})


def default_version(ec2: Any, template: str) -> DefaultVersion | None:
    """The default version of ``template`` (name or id); None if there is no such template."""
    try:
        found = ec2.describe_launch_templates(**_by(template)).get("LaunchTemplates", [])
    except ClientError as err:
        if error_code(err) in GONE:
            return None
        raise translate(err, "DescribeLaunchTemplates") from err
    if not found:
        return None
    lt = found[0]
    number = int(lt.get("DefaultVersionNumber") or 1)
    with aws_call("DescribeLaunchTemplateVersions"):
        versions = ec2.describe_launch_template_versions(
            LaunchTemplateId=lt["LaunchTemplateId"], Versions=[str(number)]
        ).get("LaunchTemplateVersions", [])
    image = (versions[0].get("LaunchTemplateData") or {}).get("ImageId") if versions else None
    return DefaultVersion(lt["LaunchTemplateId"], str(lt.get("LaunchTemplateName", "")), number,
                          image, {t["Key"]: t["Value"] for t in lt.get("Tags", []) or []})


def add_version(ec2: Any, template_id: str, *, source_version: int, image_id: str,
                description: str, token: str) -> int:
    """A new version copied from ``source_version`` with only ``ImageId`` changed; its
    number. ``token`` (ClientToken) makes a retried call return the same version."""
    with aws_call("CreateLaunchTemplateVersion"):
        made = ec2.create_launch_template_version(
            LaunchTemplateId=template_id, SourceVersion=str(source_version),
            VersionDescription=description[:255], ClientToken=token[:64],
            LaunchTemplateData={"ImageId": image_id})
    return int(made["LaunchTemplateVersion"]["VersionNumber"])


def set_default(ec2: Any, template_id: str, version: int) -> None:
    with aws_call("ModifyLaunchTemplate"):
        ec2.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion=str(version))
