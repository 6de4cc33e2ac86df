"""What a recipe says of the image it makes (the ``image``, ``retention`` and ``release``
sections) and the small checks every section's parser shares; :mod:`amiforge.core.parse`
assembles the recipe from them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from amiforge.core import parse_rollout, rules
from amiforge.core.model import (
    APPROVAL_MODES,
    DEFAULT_APPROVAL_TIMEOUT_HOURS,
    MAX_APPROVAL_TIMEOUT_HOURS,
    ImageSpec,
    ReleaseSpec,
    RetentionSpec,
)
from amiforge.core.naming import DEFAULT_TEMPLATE, name_template_problems
from amiforge.core.schema import Fields

IMAGE_KEYS = ("name", "description", "tags", "regions", "share_with", "kms_key_id",
              "region_kms_key_ids", "deprecate_after_days")
RETENTION_KEYS = ("keep", "max_age_days")
RELEASE_KEYS = ("approval", "approval_timeout_hours", "launch_templates", "instance_refresh")


def count(value: int | None) -> int:
    # integer() only returns None for a None default or null_means_none, neither used here.
    assert value is not None
    return value


def any_of(keys: tuple[str, ...]) -> str:
    names = [f"build.{k}" for k in keys]
    return ", ".join(names[:-1]) + " and " + names[-1]


def one_of(what: str, choices: tuple[str, ...]) -> Callable[[str], str | None]:
    def rule(value: str) -> str | None:
        if value in choices:
            return None
        return f"{value!r} is not a valid {what}: use {' or '.join(choices)}"
    return rule


def image_section(fields: Fields, raw: dict[str, Any], recipe_name: str | None) -> ImageSpec:
    image = fields.section(raw, "image")
    fields.known_keys(image, "image", IMAGE_KEYS)
    template = fields.string(image, "name", "image", default=DEFAULT_TEMPLATE)
    for message in name_template_problems(template or DEFAULT_TEMPLATE, recipe=recipe_name):
        fields.add("image.name", message)
    tags = tags_section(fields, image, "image")
    share_with = fields.string_list(image, "share_with", "image",
                                    rule=rules.check_account_id, accept_digits=12) or ()
    kms_key_id = fields.string(image, "kms_key_id", "image", rule=rules.check_kms_key)
    if share_with and image.get("kms_key_id") is None:
        fields.add("image.share_with",
                   "sharing an image needs a customer-managed KMS key: amiforge always "
                   "encrypts volumes, and images encrypted with the AWS-managed default key "
                   "cannot be shared; set image.kms_key_id to a key whose policy lets "
                   f"{', '.join(share_with)} use it")
    elif share_with and kms_key_id and rules.AWS_MANAGED_KMS.fullmatch(kms_key_id):
        fields.add("image.kms_key_id",
                   f"{kms_key_id!r} is an AWS-managed key, and images encrypted with it "
                   "cannot be shared; use a customer-managed key (alias/NAME or key ARN)")
    regions = fields.string_list(image, "regions", "image", rule=rules.check_region) or ()
    region_keys = fields.string_map(image, "region_kms_key_ids", "image")
    for region, key in sorted(region_keys.items()):
        if region not in regions:
            fields.add(f"image.region_kms_key_ids.{region}",
                       f"{region!r} is not in image.regions; these keys encrypt the copies "
                       "made to image.regions")
        if problem := rules.check_kms_key(key):
            fields.add(f"image.region_kms_key_ids.{region}", problem)
    if kms_key_id and not kms_key_id.startswith("alias/"):
        # A key ARN or id names a key in one region; an alias resolves in each region.
        for region in regions:
            if region not in region_keys:
                fields.add("image.region_kms_key_ids",
                           f"image.kms_key_id {kms_key_id!r} is a key of one region, so the "
                           f"copy to {region} needs its own: set "
                           f"image.region_kms_key_ids.{region} (or use an alias that exists "
                           "in every region)")
    return ImageSpec(
        name=template or DEFAULT_TEMPLATE,
        description=fields.string(image, "description", "image",
                                  max_len=rules.DESCRIPTION_MAX, rule=rules.check_text),
        tags=tags,
        regions=regions,
        share_with=share_with,
        kms_key_id=kms_key_id,
        deprecate_after_days=fields.integer(image, "deprecate_after_days", "image",
                                            low=1, high=3650, default=None),
        region_kms_key_ids=dict(region_keys),
    )


def tags_section(fields: Fields, section: dict[str, Any], prefix: str) -> dict[str, str]:
    """``image.tags`` or ``build.tags``: AWS's tag rules, and never an ``amiforge:`` key
    (those identify a build to the sweeper and the deletion gate; a recipe must not be
    able to forge or hide them)."""
    tags = fields.string_map(section, "tags", prefix)
    where = f"{prefix}.tags"
    for key, value in tags.items():
        if problem := rules.check_tag(key, value):
            fields.add(where, problem)
    if len(tags) > rules.USER_TAGS_MAX:
        fields.add(where, f"has {len(tags)} tags; at most {rules.USER_TAGS_MAX} "
                   f"(EC2 allows 50 per {'image' if prefix == 'image' else 'instance'} and "
                   "amiforge adds its own)")
    return tags


def retention_section(fields: Fields, raw: dict[str, Any]) -> RetentionSpec:
    retention = fields.section(raw, "retention")
    fields.known_keys(retention, "retention", RETENTION_KEYS)
    return RetentionSpec(
        keep=count(fields.integer(retention, "keep", "retention", low=1, default=5)),
        max_age_days=fields.integer(retention, "max_age_days", "retention", low=1,
                                    default=90, null_means_none=True),
    )


def release_section(fields: Fields, raw: dict[str, Any]) -> ReleaseSpec:
    release = fields.section(raw, "release")
    fields.known_keys(release, "release", RELEASE_KEYS)
    approval = fields.string(release, "approval", "release", default="none",
                             rule=one_of("approval mode", APPROVAL_MODES))
    hours = fields.integer(release, "approval_timeout_hours", "release", low=1,
                           high=MAX_APPROVAL_TIMEOUT_HOURS,
                           default=DEFAULT_APPROVAL_TIMEOUT_HOURS)
    if "approval_timeout_hours" in release and approval != "manual":
        fields.add("release.approval_timeout_hours",
                   "applies only with approval: manual; set release.approval: manual or "
                   "remove approval_timeout_hours")
    templates = parse_rollout.launch_templates(fields, release)
    refresh = parse_rollout.instance_refresh(fields, release)
    if refresh and not templates and "launch_templates" not in release:
        fields.add("release.instance_refresh",
                   "needs release.launch_templates: a refresh rolls a group onto the "
                   "launch template version amiforge made; list the group's template there")
    return ReleaseSpec(approval=approval or "none",
                       approval_timeout_hours=hours or DEFAULT_APPROVAL_TIMEOUT_HOURS,
                       launch_templates=templates, instance_refresh=refresh)
