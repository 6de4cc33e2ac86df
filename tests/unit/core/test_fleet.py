"""``amiforge fleet``'s arithmetic: releases behind, ages, the stale filter, the CI gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from amiforge.core import fleet
from amiforge.core.in_use import INSTANCE, LAUNCH_TEMPLATE_VERSION, SSM_PARAMETER, ImageUse

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HOME = "us-east-1"


def when(days_old: float) -> str:
    return (NOW - timedelta(days=days_old)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build(n: int, days_old: float, status: str = "AVAILABLE", **extra: Any) -> dict[str, Any]:
    return {"recipe": "web", "build_id": f"web-{n:02d}", "status": status,
            "image_id": f"ami-{n:04d}", "images": {HOME: f"ami-{n:04d}"},
            "base_ami": "ami-base", "created_at": when(days_old), **extra}


def use(image: str, kind: str = INSTANCE, ident: str = "i-1", region: str = HOME) -> ImageUse:
    return ImageUse(image_id=image, kind=kind, id=ident, region=region,
                    description=f"{kind} {ident}")


HISTORY = [build(6, 1, "FAILED"), build(5, 2, "REVOKED"), build(4, 3, base_ami="ami-gone"),
           build(3, 5, "PRUNED"),
           build(2, 8, "CANCELLED"), build(1, 40)]


def test_releases_behind_counts_newer_releases_only() -> None:
    behind = {b["build_id"]: fleet.releases_behind(b, HISTORY) for b in HISTORY}
    # FAILED and CANCELLED builds are no releases, PRUNED ones were; a REVOKED one was
    # taken back by a rollback, so the image `latest` went back to (web-04) is 0 behind.
    assert behind == {"web-06": 0, "web-05": 0, "web-04": 0, "web-03": 1, "web-02": 2,
                      "web-01": 2}


def test_a_tie_in_time_is_broken_by_build_id() -> None:
    a, b = build(1, 2), build(2, 2)
    assert fleet.releases_behind(a, [a, b]) == 1
    assert fleet.releases_behind(b, [a, b]) == 0


def rows(uses: list[ImageUse], created: dict[str, str] | None = None,
         **kwargs: Any) -> list[dict[str, Any]]:
    images = {i.image_id: i for i in fleet.images_of("web", HISTORY, HOME)}
    return fleet.rows(uses, images, {"web": HISTORY}, created or {}, now=NOW, **kwargs)


def test_rows_carry_image_and_base_ages_and_skip_what_is_no_user() -> None:
    found = rows([use("ami-0001"), use("ami-0001"),  # the scan may report a use twice
                  use("ami-0004", LAUNCH_TEMPLATE_VERSION, "lt-1:2"),
                  use("ami-0004", SSM_PARAMETER, "/amiforge/web/latest"),
                  use("ami-9999", ident="i-other")],  # not an image of the recipe
                 created={"ami-0001": when(45.5), "ami-base": when(100.2)},
                 skip=[(SSM_PARAMETER, "/amiforge/web/latest")])
    assert [(r["kind"], r["id"], r["image_id"], r["build_id"], r["releases_behind"],
             r["image_age_days"], r["base_age_days"]) for r in found] == [
        (INSTANCE, "i-1", "ami-0001", "web-01", 2, 45, 100),
        # no EC2 date: the build's created_at; the base could not be described: null
        (LAUNCH_TEMPLATE_VERSION, "lt-1:2", "ami-0004", "web-04", 0, 3, None)]
    assert set(found[0]) == set(fleet.FIELDS)


def test_a_standby_launch_template_version_is_no_user_for_fleet() -> None:
    # Version 1 after a rollout moved the default to 2: launchable only by its number
    # (a group that names it is reported as the group), so fleet does not list it.
    standby = ImageUse(image_id="ami-0001", kind=LAUNCH_TEMPLATE_VERSION, id="lt-1:1",
                       region=HOME, description="launch template lt-1 version 1",
                       standby=True)
    found = rows([standby, use("ami-0004", LAUNCH_TEMPLATE_VERSION, "lt-1:2")])
    assert [(r["id"], r["releases_behind"]) for r in found] == [("lt-1:2", 0)]


def test_stale_only_and_older_than() -> None:
    found = rows([use("ami-0005", ident="i-new"), use("ami-0003", ident="i-old")])
    assert [r["id"] for r in fleet.stale(found)] == ["i-old"]
    assert fleet.older_than(found, 4, NOW) == ["ami-0003"]
    assert fleet.older_than(found, 5, NOW) == []
    assert fleet.older_than(found, 0, NOW) == ["ami-0003", "ami-0005"]
    assert fleet.older_than([], 0, NOW) == []


def test_images_of_every_region_and_the_home_image_of_an_old_record() -> None:
    history = [build(1, 1, images={HOME: "ami-a", "eu-west-1": "ami-b"}),
               build(2, 2, images={}), build(3, 3, image_id=None, images={})]
    history[1]["image_id"] = "ami-c"
    assert {(i.region, i.image_id) for i in fleet.images_of("web", history, HOME)} == {
        (HOME, "ami-a"), ("eu-west-1", "ami-b"), (HOME, "ami-c")}
