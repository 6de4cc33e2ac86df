"""``release.launch_templates`` and ``release.instance_refresh``: read from an untrusted
recipe, every problem reported with its dotted field (``release.launch_templates[0].
region``) and what to write instead. :func:`amiforge.core.parse_sections.release_section`
calls these."""

from __future__ import annotations

from typing import Any

from amiforge.core import rules
from amiforge.core.rollout import (
    DEFAULT_MIN_HEALTHY,
    GROUP_NAME,
    LAUNCH_TEMPLATE_ID,
    LAUNCH_TEMPLATE_NAME,
    RefreshTarget,
    TemplateTarget,
)
from amiforge.core.schema import Fields, describe

TEMPLATE_KEYS = ("launch_template", "region", "adopt")
REFRESH_KEYS = ("auto_scaling_group", "region", "min_healthy_percentage",
                "instance_warmup_seconds", "checkpoints")
MAX_TARGETS = 20
MAX_WARMUP_SECONDS = 3600
TEMPLATE_EXAMPLE = ("; write e.g. launch_templates: [web-lt] or "
                    "[{launch_template: lt-0123456789abcdef0, region: eu-west-1, adopt: true}]")
REFRESH_EXAMPLE = ("; write e.g. instance_refresh: [{auto_scaling_group: web-asg, "
                   "min_healthy_percentage: 90}]")


def check_template(value: str) -> str | None:
    if LAUNCH_TEMPLATE_ID.fullmatch(value) or LAUNCH_TEMPLATE_NAME.fullmatch(value):
        return None
    return (f"{value!r} is not a launch template name (3-128 letters, digits and ( ) . - / _)"
            " or id (lt- and 17 hex digits)")


def check_group(value: str) -> str | None:
    if GROUP_NAME.fullmatch(value):
        return None
    return (f"{value!r} is not an Auto Scaling group name amiforge accepts (letters, digits, "
            "and . _ @ + = - and spaces; at most 255)")


def _entries(fields: Fields, release: dict[str, Any], key: str,
             example: str) -> list[tuple[str, Any]]:
    value = release.get(key)
    path = f"release.{key}"
    if value is None:
        return []
    if not isinstance(value, list):
        fields.add(path, f"must be a list, got {describe(value)}{example}")
        return []
    if len(value) > MAX_TARGETS:
        fields.add(path, f"lists {len(value)} entries; at most {MAX_TARGETS}")
        return []
    return [(f"{path}[{i}]", item) for i, item in enumerate(value)]


def launch_templates(fields: Fields, release: dict[str, Any]) -> tuple[TemplateTarget, ...]:
    found: list[TemplateTarget] = []
    for path, item in _entries(fields, release, "launch_templates", TEMPLATE_EXAMPLE):
        if isinstance(item, str):
            item = {"launch_template": item}
        if not isinstance(item, dict):
            fields.add(path, f"must be a launch template name or id, or a mapping, got "
                             f"{describe(item)}{TEMPLATE_EXAMPLE}")
            continue
        fields.known_keys(item, path, TEMPLATE_KEYS)
        before = len(fields.problems)
        name = fields.string(item, "launch_template", path, required=True, rule=check_template)
        region = fields.string(item, "region", path, rule=rules.check_region)
        adopt = fields.boolean(item, "adopt", path)
        if len(fields.problems) > before or name is None:
            continue
        target = TemplateTarget(name, region, bool(adopt))
        if any((t.launch_template, t.region) == (name, region) for t in found):
            fields.add(path, f"{name!r} is listed twice")
            continue
        found.append(target)
    return tuple(found)


def instance_refresh(fields: Fields, release: dict[str, Any]) -> tuple[RefreshTarget, ...]:
    found: list[RefreshTarget] = []
    for path, item in _entries(fields, release, "instance_refresh", REFRESH_EXAMPLE):
        if isinstance(item, str):
            item = {"auto_scaling_group": item}
        if not isinstance(item, dict):
            fields.add(path, f"must be an Auto Scaling group name or a mapping, got "
                             f"{describe(item)}{REFRESH_EXAMPLE}")
            continue
        fields.known_keys(item, path, REFRESH_KEYS)
        before = len(fields.problems)
        group = fields.string(item, "auto_scaling_group", path, required=True,
                              rule=check_group)
        region = fields.string(item, "region", path, rule=rules.check_region)
        healthy = fields.integer(item, "min_healthy_percentage", path, low=0, high=100,
                                 default=DEFAULT_MIN_HEALTHY)
        warmup = fields.integer(item, "instance_warmup_seconds", path, low=0,
                                high=MAX_WARMUP_SECONDS, default=None)
        checkpoints = _checkpoints(fields, item, path)
        if len(fields.problems) > before or group is None:
            continue
        if any((t.auto_scaling_group, t.region) == (group, region) for t in found):
            fields.add(path, f"{group!r} is listed twice")
            continue
        found.append(RefreshTarget(group, region, healthy if healthy is not None
                                   else DEFAULT_MIN_HEALTHY, warmup, checkpoints))
    return tuple(found)


def _checkpoints(fields: Fields, item: dict[str, Any], path: str) -> tuple[int, ...]:
    value = item.get("checkpoints")
    where = f"{path}.checkpoints"
    if value is None:
        return ()
    if not isinstance(value, list) or not value or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        fields.add(where, f"must be a list of whole percentages, got {describe(value)}; "
                          "write e.g. [20, 50, 100]")
        return ()
    if any(v < 1 or v > 100 for v in value) or any(
            b <= a for a, b in zip(value, value[1:], strict=False)):
        fields.add(where, f"{value} must rise strictly, each from 1 to 100 "
                          "(AWS pauses the refresh at each); write e.g. [20, 50, 100]")
        return ()
    return tuple(value)
