"""Image names: render the recipe's ``image.name`` template, and check templates early.

A template is plain text with placeholders ``{recipe}``, ``{date}`` (UTC,
``YYYYMMDD-HHMMSS``), ``{short_hash}`` (12 hex of the recipe hash) and ``{build_id}``.
Validation (:func:`name_template_problems`) runs when a recipe is loaded, so a template
that could never give a legal AMI name is refused before any build starts; rendering
(:func:`render_image_name`) runs in the create-image step and checks the real result.

EC2 AMI names: 3-128 characters of letters, digits and ``( ) [ ] space . / - ' @ _``,
unique per account and region - hence the rule that a template must contain ``{date}``
or ``{build_id}``: ``{short_hash}`` alone repeats when only the base AMI changed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from amiforge.errors import InvalidInput

PLACEHOLDERS = ("recipe", "date", "short_hash", "build_id")
DEFAULT_TEMPLATE = "{recipe}-{date}-{short_hash}"
DATE_FORMAT = "%Y%m%d-%H%M%S"
NAME_MIN, NAME_MAX = 3, 128

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_ILLEGAL_CHAR = re.compile(r"[^A-Za-z0-9()\[\] ./\-'@_]")
# Shortest value each placeholder can take: a 1-character recipe name, the fixed-width
# date and short hash, and a build id of at least one character.
_SHORTEST = {"recipe": "a", "date": "20000101-000000", "short_hash": "0" * 12, "build_id": "b"}
# Longest the pipeline ever passes: recipe names and build keys are bounded (see hashing).
_LONGEST = {"recipe": "a" * 40, "date": "20000101-000000", "short_hash": "0" * 12,
            "build_id": "b" * 61}


def _substitute(template: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def name_problems(name: str) -> list[str]:
    """Why EC2 would refuse ``name`` as an AMI name (empty list: it would accept it)."""
    problems = []
    if not NAME_MIN <= len(name) <= NAME_MAX:
        problems.append(f"is {len(name)} characters; AMI names must be {NAME_MIN}-{NAME_MAX}")
    bad = sorted(set(_ILLEGAL_CHAR.findall(name)))
    if bad:
        problems.append(
            f"contains {', '.join(repr(c) for c in bad)}; AMI names allow only letters, "
            "digits, spaces and ( ) [ ] . / - ' @ _")
    return problems


def name_template_problems(template: str, *, recipe: str | None = None) -> list[str]:
    """Everything wrong with an image name template, as messages (empty list: fine).

    Checks unknown placeholders, characters EC2 refuses, names that are too long even
    with the shortest values (or, given ``recipe``, with that recipe's name) or too short
    even with the longest, and templates that would repeat a name across builds.
    """
    problems: list[str] = []
    fields = _PLACEHOLDER.findall(template)
    unknown = sorted({f for f in fields if f not in PLACEHOLDERS})
    for name in unknown:
        problems.append(
            f"unknown placeholder {{{name}}} in {template!r}; use "
            + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS))
    if unknown:
        return problems
    if "date" not in fields and "build_id" not in fields:
        problems.append(
            f"{template!r} would give every build of the recipe the same image name, and "
            "AMI names must be unique; include {date} or {build_id}")
    shortest = dict(_SHORTEST, **({"recipe": recipe} if recipe else {}))
    longest = dict(_LONGEST, **({"recipe": recipe} if recipe else {}))
    short_name = _substitute(template, shortest)
    bad = sorted(set(_ILLEGAL_CHAR.findall(short_name)))
    if bad:
        problems.append(
            f"{template!r} contains {', '.join(repr(c) for c in bad)}; AMI names allow only "
            "letters, digits, spaces and ( ) [ ] . / - ' @ _ besides the placeholders")
    if len(short_name) > NAME_MAX:
        problems.append(
            f"{template!r} renders to at least {len(short_name)} characters; AMI names "
            f"allow {NAME_MAX}: shorten the fixed text")
    if len(_substitute(template, longest)) < NAME_MIN:
        problems.append(f"{template!r} renders to fewer than {NAME_MIN} characters")
    return problems


def format_date(date: datetime) -> str:
    """``YYYYMMDD-HHMMSS`` in UTC; a naive datetime is taken to be UTC already."""
    if date.tzinfo is not None:
        date = date.astimezone(UTC)
    return date.strftime(DATE_FORMAT)


def render_image_name(template: str, *, recipe: str, date: datetime, short_hash: str,
                      build_id: str) -> str:
    """The AMI name for one build; raises InvalidInput if EC2 would refuse it."""
    unknown = sorted({f for f in _PLACEHOLDER.findall(template) if f not in PLACEHOLDERS})
    if unknown:
        raise InvalidInput(
            f"image name template {template!r} has unknown placeholder(s) "
            + ", ".join(f"{{{u}}}" for u in unknown),
            hint="use " + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS))
    name = _substitute(template, {"recipe": recipe, "date": format_date(date),
                                  "short_hash": short_hash, "build_id": build_id})
    problems = name_problems(name)
    if problems:
        raise InvalidInput(f"image name {name!r} (from template {template!r}) "
                           + "; ".join(problems),
                           hint="fix image.name in the recipe")
    return name
