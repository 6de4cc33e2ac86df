"""The sweeper's repair of ``/amiforge/<recipe>/latest`` (``steps/latest_repair.py``) on
the local cloud: a parameter naming a missing image is pointed at the newest AVAILABLE
image that exists in that region (copies included), or reported when there is none; a
parameter that is right, or absent, is not touched; a region that cannot be read is
reported and the others are still checked; a dry run changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from tests.helpers import COPY, HOME, build_id_of, iso, latest_value, seed, tagged_image, unique

from amiforge.steps.env import StepEnv
from amiforge.steps.latest_repair import repair_latest


def put_latest(env: StepEnv, recipe: str, image_id: str, region: str = HOME) -> None:
    env.client("ssm", region).put_parameter(
        Name=f"/amiforge/{recipe}/latest", Value=image_id, Type="String",
        DataType="aws:ec2:image", Overwrite=True)


def available(env: StepEnv, recipe: str, days_old: float, *regions: str) -> dict[str, Any]:
    build_id = build_id_of(recipe)
    images = {r: tagged_image(env, recipe, build_id, r)[0] for r in (HOME, *regions)}
    record = {"recipe": recipe, "build_id": build_id, "status": "AVAILABLE",
              "image_id": images[HOME], "images": images, "created_at": iso(days_old)}
    seed(env, record)
    return record


def published(name: str, *regions: str) -> dict[str, Any]:
    return {"name": name, "document": {"name": name, "image": {"regions": list(regions)}}}


def test_a_missing_image_is_replaced_by_the_newest_existing_one_in_each_region(
        env: StepEnv) -> None:
    recipe = unique("repair")
    older = available(env, recipe, 3, COPY)
    newer = available(env, recipe, 1, COPY)
    gone = available(env, recipe, 0)  # newest, but its image goes below
    for region in (HOME, COPY):
        put_latest(env, recipe, gone["image_id"] if region == HOME else
                   newer["images"][COPY], region)
    env.client("ec2").deregister_image(ImageId=gone["image_id"])
    env.client("ec2", COPY).deregister_image(ImageId=newer["images"][COPY])

    planned = repair_latest(env, [published(recipe, COPY)], dry_run=True)
    assert latest_value(env, recipe) == gone["image_id"]
    done = repair_latest(env, [published(recipe, COPY)], dry_run=False)

    assert [(r["region"], r["build_id"], r["action"], r["outcome"]) for r in planned] == [
        (HOME, newer["build_id"], "repair-latest", "planned"),
        (COPY, older["build_id"], "repair-latest", "planned")]
    assert [r["outcome"] for r in done] == ["done", "done"]
    assert latest_value(env, recipe) == newer["image_id"]
    assert latest_value(env, recipe, COPY) == older["images"][COPY]
    assert repair_latest(env, [published(recipe, COPY)], dry_run=False) == []


def test_a_right_or_absent_parameter_is_left_alone(env: StepEnv) -> None:
    right, absent = unique("right"), unique("absent")
    build = available(env, right, 0)
    put_latest(env, right, build["image_id"])
    available(env, absent, 0)
    assert repair_latest(env, [published(right), published(absent)], dry_run=False) == []
    assert latest_value(env, absent) is None


@pytest.mark.usefixtures("short_client_backoff")
def test_no_image_left_is_reported_and_an_unreadable_region_fails_alone(env: StepEnv) -> None:
    recipe = unique("lost")
    build = available(env, recipe, 0)
    put_latest(env, recipe, build["image_id"])
    env.client("ec2").deregister_image(ImageId=build["image_id"])

    rows = repair_latest(env, [published(recipe, "zz-fake-9")], dry_run=False)

    by_region = {r["region"]: r for r in rows}
    assert by_region[HOME]["action"] == "report"
    assert by_region[HOME]["reason"] == (
        f"latest names {build['image_id']}, which does not exist, and no AVAILABLE image "
        f"of {recipe} exists in {HOME}")
    assert by_region["zz-fake-9"]["action"] == "error"
    assert by_region["zz-fake-9"]["reason"].startswith("could not check latest: ")
    assert latest_value(env, recipe) == build["image_id"]  # nothing better to name
    # A region the sweep could not list is skipped here, not reported twice.
    skipped = repair_latest(env, [published(recipe, "zz-fake-9")], dry_run=True,
                            skip={"zz-fake-9"})
    assert [r["region"] for r in skipped] == [HOME]
