"""Rolling a release out: the recipe's ``release.launch_templates`` and
``release.instance_refresh``, and the pure decisions the rollout steps act on. No I/O.

After Register has published `latest`, the Rollout step (``steps/rollout.py``) moves each
listed launch template to the new image: a new version copied from the current default
with only ``ImageId`` changed, made the default. Which templates it may move is decided
here (:func:`decide_template`), from facts the step reads:

* the template is tagged ``amiforge:rollout`` = this stack's name (the consumer's
  permission, and the condition IAM puts on the writes); without it, it is skipped;
* its current default version runs an image tagged ``amiforge:recipe`` = this recipe,
  or ``resolve:ssm:/amiforge/<recipe>/...``: it is this recipe's template, and it moves;
* otherwise it moves only with ``adopt: true`` (the first rollout to a template that
  still runs a base image or another tool's image); else it is skipped, with the reason
  logged and recorded on the build;
* a template whose default already runs the new image is left as it is (a retried step).

Then each listed Auto Scaling group is refreshed onto the version made for its launch
template (:func:`refresh_request`), with automatic rollback. The refresh's outcome is
judged by :func:`refresh_outcome`: ``Successful`` is done; ``Failed``, ``Cancelled`` and
every ``Rollback*`` status roll the release back (launch templates and `latest`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from amiforge.core import tags as tag_keys

LAUNCH_TEMPLATE_ID = re.compile(r"lt-[0-9a-f]{17}")  # AWS: always 17 hex digits
# AWS: 3-128 characters of letters, digits and ( ) . - / _
LAUNCH_TEMPLATE_NAME = re.compile(r"[A-Za-z0-9().\-/_]{3,128}")
# AWS allows most printable characters in a group name; amiforge takes the usual ones
# (a filter is built from it, so nothing pattern-like).
GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+= -]{0,254}")
DEFAULT_MIN_HEALTHY = 90
# The tag a consumer puts on a launch template or group to let one stack roll it out.
ROLLOUT_TAG = "amiforge:rollout"

# Instance refresh statuses (DescribeInstanceRefreshes) and what they mean here.
REFRESH_DONE = frozenset({"Successful"})
REFRESH_FAILED = frozenset({"Failed", "Cancelled", "RollbackSuccessful", "RollbackFailed"})
REFRESH_RUNNING = frozenset({"Pending", "InProgress", "Cancelling", "RollbackInProgress",
                             "Baking"})


@dataclass(frozen=True)
class TemplateTarget:
    """One ``release.launch_templates`` entry: a template by name or id; ``region`` None
    means every region the image is in."""

    launch_template: str
    region: str | None = None
    adopt: bool = False

    @property
    def is_id(self) -> bool:
        return LAUNCH_TEMPLATE_ID.fullmatch(self.launch_template) is not None

    def to_document(self) -> dict[str, Any]:
        # Only what is set: the document is parsed again as a recipe is.
        document: dict[str, Any] = {"launch_template": self.launch_template,
                                    "adopt": self.adopt}
        if self.region is not None:
            document["region"] = self.region
        return document


@dataclass(frozen=True)
class RefreshTarget:
    """One ``release.instance_refresh`` entry (AWS's instance refresh preferences)."""

    auto_scaling_group: str
    region: str | None = None
    min_healthy_percentage: int = DEFAULT_MIN_HEALTHY
    instance_warmup_seconds: int | None = None
    checkpoints: tuple[int, ...] = ()

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"auto_scaling_group": self.auto_scaling_group,
                                    "min_healthy_percentage": self.min_healthy_percentage}
        if self.region is not None:
            document["region"] = self.region
        if self.instance_warmup_seconds is not None:
            document["instance_warmup_seconds"] = self.instance_warmup_seconds
        if self.checkpoints:
            document["checkpoints"] = list(self.checkpoints)
        return document


def regions_of(target_region: str | None, images: Mapping[str, str]) -> list[str]:
    """The regions an entry applies to: its own (if the image is there) or all of them."""
    if target_region is None:
        return sorted(images)
    return [target_region] if target_region in images else []


@dataclass(frozen=True)
class TemplateDecision:
    """Move the template (``move``) or not, and why (logged and recorded)."""

    move: bool
    reason: str


def permits(resource_tags: Mapping[str, str], stack: str) -> bool:
    """A consumer lets this stack roll a launch template or group out by tagging it
    ``amiforge:rollout`` = the stack's name (IAM's condition on the writes too)."""
    return bool(stack) and resource_tags.get(ROLLOUT_TAG) == stack


def decide_template(target: TemplateTarget, *, recipe: str, new_image: str,
                    default_image: str | None,
                    default_image_tags: Mapping[str, str] | None,
                    template_tags: Mapping[str, str], stack: str) -> TemplateDecision:
    """Whether the rollout moves one template, from its own tags, its default version's
    image (an AMI id or ``resolve:ssm:NAME``) and that image's tags (None: the image
    could not be described, e.g. deregistered)."""
    if not permits(template_tags, stack):
        return TemplateDecision(False, f"it is not tagged {ROLLOUT_TAG}={stack}: tag it so to "
                                       "let this stack roll it out")
    if default_image == new_image:
        return TemplateDecision(False, f"its default version already runs {new_image}")
    owner = (default_image_tags or {}).get(tag_keys.RECIPE)
    if owner == recipe or (default_image or "").startswith(f"resolve:ssm:/amiforge/{recipe}/"):
        return TemplateDecision(True, f"its default version runs {default_image}, an image "
                                      f"of recipe {recipe}")
    if target.adopt:
        return TemplateDecision(True, f"adopt: true (its default version runs "
                                      f"{default_image or 'no image'})")
    what = (f"an image of recipe {owner}" if owner
            else "an image amiforge did not build for this recipe")
    return TemplateDecision(False, f"its default version runs {default_image or 'no image'}, "
                                   f"{what}; set adopt: true on the entry to take it over")


def refresh_request(target: RefreshTarget, *, template_id: str,
                    version: int) -> dict[str, Any]:
    """StartInstanceRefresh's parameters: roll the group onto ``version`` of its
    template, with AWS's automatic rollback (which needs a numbered version, not
    ``$Default``: the group references that version once the refresh succeeds)."""
    preferences: dict[str, Any] = {"MinHealthyPercentage": target.min_healthy_percentage,
                                   "AutoRollback": True}
    if target.instance_warmup_seconds is not None:
        preferences["InstanceWarmup"] = target.instance_warmup_seconds
    if target.checkpoints:
        preferences["CheckpointPercentages"] = list(target.checkpoints)
    return {"AutoScalingGroupName": target.auto_scaling_group, "Strategy": "Rolling",
            "DesiredConfiguration": {"LaunchTemplate": {"LaunchTemplateId": template_id,
                                                        "Version": str(version)}},
            "Preferences": preferences}


def refresh_outcome(status: str | None) -> str:
    """``succeeded``, ``failed`` or ``running`` for a refresh status (an unknown one is
    still running: a bounded wait ends it)."""
    if status in REFRESH_DONE:
        return "succeeded"
    if status in REFRESH_FAILED:
        return "failed"
    return "running"


def overall(outcomes: Sequence[str]) -> str:
    """All refreshes: ``failed`` if any failed, ``running`` while any runs, else
    ``succeeded`` (no refresh at all is a success)."""
    if "failed" in outcomes:
        return "failed"
    if "running" in outcomes:
        return "running"
    return "succeeded"
