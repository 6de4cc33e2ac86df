"""What counts as "in use" for an image: the rule, kept apart from the reading of it. Pure.

An image is in use if anything in the account, in the region the image is in, can launch
an instance from it (``aws/usage.py`` reads each kind; the deletion gate,
``core/deletion.py``, keeps what is in use):

* an instance launched from it, in any state but ``terminated``
  (:data:`INSTANCE_STATES`: a shutting-down or stopped instance still holds it);
* any version of any launch template that names it, directly or through a
  ``resolve:ssm:`` parameter (any version can be launched by number, not only
  ``$Default`` and ``$Latest``);
* an Auto Scaling group's launch template, mixed instances policy and its overrides, or
  launch configuration; any launch configuration;
* an SSM parameter of any type and data type whose value is the image id;
* a Spot fleet request or EC2 Fleet that can still launch (not in
  :data:`FLEET_ENDED_STATES`) and names it in a launch specification, a launch template
  or an override.

A kind that cannot be read counts as a use (fail closed). What amiforge cannot see is
:data:`CANNOT_SEE`; ``amiforge prune`` prints it with every plan.
"""

from __future__ import annotations

from dataclasses import dataclass

INSTANCE_STATES = ("pending", "running", "shutting-down", "stopping", "stopped")
FLEET_ENDED_STATES = frozenset({"cancelled", "cancelled_terminating", "cancelled_running",
                                "failed", "deleted", "deleted_terminating",
                                "deleted_running"})
CANNOT_SEE = (
    "other accounts (an image shared with image.share_with may run there)",
    "uses outside AWS: scripts, CI variables, other tools' configuration",
    "services that keep their own copy of an image id (EC2 Image Builder, templates "
    "with a literal id)",
)

SSM_PREFIX = "resolve:ssm:"
# A launch template reference without a version launches the default one.
DEFAULT_VERSION = "$Default"


def ssm_reference(image: str | None) -> str | None:
    """The parameter a launch template's ``ImageId`` names (``resolve:ssm:NAME``), or None
    for a plain AMI id: the image in use is the parameter's value."""
    if image and image.startswith(SSM_PREFIX):
        return image[len(SSM_PREFIX):]
    return None


def version_labels(number: str, default: str, latest: str) -> list[str]:
    """How a launch template version that names an image is reported: every version
    counts (any can be launched by number); ``$Default``/``$Latest`` say which it is."""
    labels = [label for label, hit in (("$Default", number == default),
                                       ("$Latest", number == latest)) if hit]
    return labels or [f"version {number}"]


def fleet_can_launch(state: str | None) -> bool:
    """A Spot fleet request or EC2 Fleet uses its images until it ended."""
    return state not in FLEET_ENDED_STATES


# The kinds of use (``ImageUse.kind``): what ``amiforge fleet`` prints, snake_case.
INSTANCE = "instance"
AUTO_SCALING_GROUP = "auto_scaling_group"
LAUNCH_TEMPLATE_VERSION = "launch_template_version"
LAUNCH_CONFIGURATION = "launch_configuration"
SSM_PARAMETER = "ssm_parameter"
SPOT_FLEET_REQUEST = "spot_fleet_request"
EC2_FLEET = "ec2_fleet"


@dataclass(frozen=True)
class ImageUse:
    """One use of one image, as the scan found it: ``kind`` (above), ``id`` (the instance
    id, group name, ``lt-…:VERSION``, configuration or parameter name, fleet id), its
    ``region``, and ``description``: the sentence retention's reasons quote. ``standby``:
    a launch template version that is neither ``$Default`` nor ``$Latest``. Retention
    keeps its image (anything can launch it by number); ``amiforge fleet`` leaves it out,
    since nothing launches it unless it names that number (a group that does is listed
    as the group), and after a rollout it is the version a rollback returns to."""

    image_id: str
    kind: str
    id: str
    region: str
    description: str
    standby: bool = False
