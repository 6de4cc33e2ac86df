"""Image names: rendering and early template checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from amiforge.core.naming import name_problems, name_template_problems, render_image_name
from amiforge.errors import InvalidInput

WHEN = datetime(2024, 5, 17, 9, 3, 7, tzinfo=UTC)


def render(template: str, **overrides: object) -> str:
    args: dict = {"recipe": "web", "date": WHEN, "short_hash": "3f9a0c1b2d4e",
                  "build_id": "web-0123456789abcdef0123"}
    args.update(overrides)
    return render_image_name(template, **args)


def test_default_template() -> None:
    assert render("{recipe}-{date}-{short_hash}") == "web-20240517-090307-3f9a0c1b2d4e"


def test_every_placeholder_and_legal_punctuation() -> None:
    assert render("{recipe} (build {build_id}) [{date}] @team/x.y_z 'q'") == (
        "web (build web-0123456789abcdef0123) [20240517-090307] @team/x.y_z 'q'")


def test_date_is_rendered_in_utc() -> None:
    plus_two = WHEN.astimezone(timezone(timedelta(hours=2)))
    assert render("{date}", date=plus_two) == "20240517-090307"
    assert render("{date}", date=WHEN.replace(tzinfo=None)) == "20240517-090307"


def test_rendering_refuses_a_name_ec2_would_refuse() -> None:
    with pytest.raises(InvalidInput) as info:
        render("{recipe}-{date}", recipe="w" * 120)
    assert str(info.value) == (
        f"image name {'w' * 120 + '-20240517-090307'!r} (from template '{{recipe}}-{{date}}') "
        "is 136 characters; AMI names must be 3-128 (fix image.name in the recipe)")


def test_rendering_refuses_illegal_characters_from_values() -> None:
    with pytest.raises(InvalidInput, match=r"contains ':'; AMI names allow only"):
        render("{build_id}-{date}", build_id="a:b")


def test_rendering_refuses_unknown_placeholders() -> None:
    with pytest.raises(InvalidInput) as info:
        render("{recipe}-{when}")
    assert str(info.value) == ("image name template '{recipe}-{when}' has unknown "
                               "placeholder(s) {when} (use {recipe}, {date}, {short_hash}, "
                               "{build_id})")


def test_name_problems() -> None:
    assert name_problems("ok-name") == []
    assert name_problems("ab") == ["is 2 characters; AMI names must be 3-128"]
    assert name_problems("a:b*c") == [
        "contains '*', ':'; AMI names allow only letters, digits, spaces and ( ) [ ] . / - ' @ _"]


@pytest.mark.parametrize("template", [
    "{recipe}-{date}-{short_hash}", "{build_id}", "golden {recipe} {date}",
    "x" * 113 + "{date}",  # exactly 128 with the date
])
def test_good_templates(template: str) -> None:
    assert name_template_problems(template) == []


def test_template_problems() -> None:
    assert name_template_problems("{recipe}-{bogus}-{date}") == [
        "unknown placeholder {bogus} in '{recipe}-{bogus}-{date}'; use {recipe}, {date}, "
        "{short_hash}, {build_id} or {date:STRFTIME}"]
    assert name_template_problems("static-name") == [
        "'static-name' would give every build of the recipe the same image name, and AMI "
        "names must be unique; include {date} or {build_id}"]
    assert name_template_problems("{date}" + "x" * 114) == [
        f"'{{date}}{'x' * 114}' renders to at least 129 characters; AMI names allow 128: "
        "shorten the fixed text"]
    assert name_template_problems("{date}-}{") == [
        "'{date}-}{' contains '{', '}'; AMI names allow only letters, digits, spaces and "
        "( ) [ ] . / - ' @ _ besides the placeholders"]


def test_template_length_with_a_known_recipe_name() -> None:
    template = "{recipe}" + "x" * 112 + "{date}"
    assert name_template_problems(template) == []
    assert name_template_problems(template, recipe="web") == [
        f"{template!r} renders to at least 130 characters; AMI names allow 128: shorten the "
        "fixed text"]


def test_a_date_format_names_images_by_day_in_utc() -> None:
    assert render("{recipe}-{date:%Y%m%d}") == "web-20240517"
    late = datetime(2024, 5, 17, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
    assert render("{recipe}-{date:%Y%m%d}", date=late) == "web-20240518"
    assert render("{recipe}-{date:%Y.%m.%d_%H%M} {date}") == "web-2024.05.17_0903 20240517-090307"
    assert render("{recipe} {date:%a %d %B %Y}") == "web Fri 17 May 2024"


def test_rendering_refuses_a_bad_date_format() -> None:
    with pytest.raises(InvalidInput, match=r"the date format '%z' uses '%z'"):
        render("{recipe}-{date:%z}")


def test_a_date_format_counts_its_longest_rendering() -> None:
    # %B is at most "September": 9 characters, so 119 fixed + 9 is the limit.
    assert name_template_problems("a" * 119 + "{date:%B}") == []
    assert name_template_problems("a" * 120 + "{date:%B}") == [
        f"{'a' * 120 + '{date:%B}'!r} renders to at least 129 characters; AMI names allow "
        "128: shorten the fixed text"]
