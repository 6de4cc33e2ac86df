"""Image names: render the recipe's ``image.name`` template, and check templates early.

A template is plain text with placeholders ``{recipe}``, ``{date}`` (UTC,
``YYYYMMDD-HHMMSS``), ``{date:STRFTIME}`` (UTC, in that format, like ``{date:%Y%m%d}``
for names by day), ``{short_hash}`` (12 hex of the recipe hash) and ``{build_id}``.
A date format may use only the directives in :data:`DATE_DIRECTIVES`: each gives
letters or digits whatever the date, so no format can render a character EC2 refuses
(``%c``, ``%z`` or an unknown ``%Q`` could) - the rest of it is checked as fixed text.
Validation (:func:`name_template_problems`) runs when a recipe is loaded, so a template
that could never give a legal AMI name is refused before any build starts; rendering
(:func:`render_image_name`) runs in the create-image step and checks the real result.

EC2 AMI names: 3-128 characters of letters, digits and ``( ) [ ] space . / - ' @ _``,
unique per account and region - hence the rule that a template must contain ``{date}``
or ``{build_id}``: ``{short_hash}`` alone repeats when only the base AMI changed. A
coarse date (``{date:%Y%m%d}``) can still repeat: the create-image step refuses a name
already taken in the account and region, before CreateImage, with the reason.
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
# strftime directives whose output is letters and digits only, in any C-locale date
# (%a %A %b %B %p are English names in the Lambda runtime's C locale).
DATE_DIRECTIVES = "YymdHMSjIpGVuwUWbBaAf"
_DIRECTIVE = re.compile(r"%(.?)")
# Dates that give the shortest and the longest rendering of every allowed directive
# (a Monday in May; a Wednesday in September).
_SAMPLE_DATES = (datetime(2000, 5, 1, 0, 0, 0, 0, tzinfo=UTC),
                 datetime(2021, 9, 29, 23, 59, 59, 999999, tzinfo=UTC))
_ILLEGAL_CHAR = re.compile(r"[^A-Za-z0-9()\[\] ./\-'@_]")
# Shortest value each placeholder can take: a 1-character recipe name, the fixed-width
# date and short hash, and a build id of at least one character.
_SHORTEST = {"recipe": "a", "date": "20000101-000000", "short_hash": "0" * 12, "build_id": "b"}
# Longest the pipeline ever passes: recipe names and build keys are bounded (see hashing).
_LONGEST = {"recipe": "a" * 40, "date": "20000101-000000", "short_hash": "0" * 12,
            "build_id": "b" * 61}


def _substitute(template: str, values: dict[str, str], date: datetime | None = None) -> str:
    def one(match: re.Match[str]) -> str:
        field, _, fmt = match.group(1).partition(":")
        if field == "date" and fmt and date is not None:
            return date.strftime(fmt)
        return values.get(match.group(1), match.group(0))
    return _PLACEHOLDER.sub(one, template)


def _field(placeholder: str) -> str:
    return placeholder.partition(":")[0]


def date_format_problem(fmt: str) -> str | None:
    """Why ``{date:FMT}`` cannot be used (None: it can)."""
    directives = _DIRECTIVE.findall(fmt)
    bad = sorted({d for d in directives if not d or d not in DATE_DIRECTIVES})
    if bad:
        shown = ", ".join(repr("%" + d) for d in bad)
        return (f"the date format {fmt!r} uses {shown}, which may render characters AMI "
                "names do not allow (or is no strftime directive at all); use only "
                + " ".join("%" + d for d in DATE_DIRECTIVES) + ", like {date:%Y%m%d}")
    if not directives:
        return (f"the date format {fmt!r} has no strftime directive, so it is no date; "
                "write one like {date:%Y%m%d}, or plain {date}")
    return None


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
    placeholders = _PLACEHOLDER.findall(template)
    fields = [_field(p) for p in placeholders]
    unknown = sorted({p for p in placeholders if _field(p) not in PLACEHOLDERS
                      or (":" in p and _field(p) != "date")})
    for name in unknown:
        problems.append(
            f"unknown placeholder {{{name}}} in {template!r}; use "
            + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS) + " or {date:STRFTIME}")
    if unknown:
        return problems
    for placeholder in placeholders:
        fmt = placeholder.partition(":")[2]
        if placeholder.startswith("date:") and (problem := date_format_problem(fmt)):
            problems.append(problem)
    if problems:
        return problems
    if "date" not in fields and "build_id" not in fields:
        problems.append(
            f"{template!r} would give every build of the recipe the same image name, and "
            "AMI names must be unique; include {date} or {build_id}")
    shortest = dict(_SHORTEST, **({"recipe": recipe} if recipe else {}))
    longest = dict(_LONGEST, **({"recipe": recipe} if recipe else {}))
    renderings = [_substitute(template, values, date)
                  for values in (shortest, longest) for date in _SAMPLE_DATES]
    # The fixed text with the shortest values, on the date that renders longest (%B is
    # "May" or "September"): a name that fits only in May would fail a September build.
    short_name = max(renderings[:len(_SAMPLE_DATES)], key=len)
    bad = sorted({c for r in renderings for c in _ILLEGAL_CHAR.findall(r)})
    if bad:
        problems.append(
            f"{template!r} contains {', '.join(repr(c) for c in bad)}; AMI names allow only "
            "letters, digits, spaces and ( ) [ ] . / - ' @ _ besides the placeholders")
    if len(short_name) > NAME_MAX:
        problems.append(
            f"{template!r} renders to at least {len(short_name)} characters; AMI names "
            f"allow {NAME_MAX}: shorten the fixed text")
    if max(len(r) for r in renderings) < NAME_MIN:
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
    placeholders = _PLACEHOLDER.findall(template)
    unknown = sorted({p for p in placeholders if _field(p) not in PLACEHOLDERS
                      or (":" in p and _field(p) != "date")})
    if unknown:
        raise InvalidInput(
            f"image name template {template!r} has unknown placeholder(s) "
            + ", ".join(f"{{{u}}}" for u in unknown),
            hint="use " + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS))
    for placeholder in placeholders:
        fmt = placeholder.partition(":")[2]
        if placeholder.startswith("date:") and (problem := date_format_problem(fmt)):
            raise InvalidInput(f"image name template {template!r}: {problem}",
                               hint="fix image.name in the recipe")
    if date.tzinfo is not None:
        date = date.astimezone(UTC)
    name = _substitute(template, {"recipe": recipe, "date": format_date(date),
                                  "short_hash": short_hash, "build_id": build_id}, date)
    problems = name_problems(name)
    if problems:
        raise InvalidInput(f"image name {name!r} (from template {template!r}) "
                           + "; ".join(problems),
                           hint="fix image.name in the recipe")
    return name
