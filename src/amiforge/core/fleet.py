"""``amiforge fleet``: who runs which image of a recipe, and how stale it is. Pure.

The facts come in (each recipe's catalog history, the uses the one usage scan found,
the images' and base AMIs' creation dates); rows come out, one per use of an image:

* ``releases_behind``: how many *releases* of the recipe are newer than the build the
  image came from. A release is a build that was AVAILABLE at some point: status
  AVAILABLE or PRUNED (:data:`RELEASED`). Newer means a later ``created_at``
  (the build id breaks a tie). 0: no release is newer, the use runs the newest one,
  normally ``latest``. A REVOKED build is a release taken back (``amiforge rollback``):
  it does not count, so after a rollback the image ``latest`` went back to is 0 behind.
* ``image_age_days`` and ``base_age_days``: whole days since the image's (and its base
  AMI's) creation date. The image's date is EC2's ``CreationDate`` when it can still be
  described, else the build record's ``created_at`` (a pruned image still runs on the
  instances launched from it); the base's is EC2's or unknown (``null``).

:func:`older_than` is the CI gate's question: does any row's image exceed ``days`` (exact
age, not the whole days shown)?
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from amiforge.core.in_use import ImageUse
from amiforge.core.statuses import BuildStatus

RELEASED = frozenset({BuildStatus.AVAILABLE.value, BuildStatus.PRUNED.value})
FIELDS = ("kind", "id", "region", "recipe", "image_id", "build_id", "releases_behind",
          "image_created_at", "image_age_days", "base_ami", "base_age_days", "description")


@dataclass(frozen=True)
class BuiltImage:
    """One image of one build, in one region."""

    recipe: str
    build_id: str
    region: str
    image_id: str
    created_at: str
    base_ami: str | None


def parse_time(text: str) -> datetime:
    """An ISO-8601 time (the catalog's ``...Z``, EC2's ``...000Z``), timezone-aware."""
    when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _order(build: Mapping[str, Any]) -> tuple[str, str]:
    return str(build.get("created_at") or ""), str(build.get("build_id") or "")


def releases_behind(build: Mapping[str, Any], history: Iterable[Mapping[str, Any]]) -> int:
    """How many releases in ``history`` (the recipe's builds) are newer than ``build``."""
    mine = _order(build)
    return sum(1 for other in history
               if str(other.get("status")) in RELEASED and _order(other) > mine)


def images_of(recipe: str, history: Iterable[Mapping[str, Any]], home: str
              ) -> list[BuiltImage]:
    """Every image every build of ``recipe`` made, in every region (a build without an
    ``images`` map has its ``image_id`` in the home region)."""
    out = []
    for build in history:
        images = build.get("images") or ({home: build["image_id"]}
                                         if build.get("image_id") else {})
        for region, image_id in sorted(images.items()):
            if image_id:
                out.append(BuiltImage(recipe=recipe, build_id=str(build["build_id"]),
                                      region=region, image_id=str(image_id),
                                      created_at=str(build.get("created_at") or ""),
                                      base_ami=build.get("base_ami") or None))
    return out


def age_days(created: str | None, now: datetime) -> int | None:
    if not created:
        return None
    return max(0, (now - parse_time(created)) // timedelta(days=1))


def rows(uses: Iterable[ImageUse], images: Mapping[str, BuiltImage],
         histories: Mapping[str, Sequence[Mapping[str, Any]]],
         created: Mapping[str, str], *, now: datetime,
         skip: Iterable[tuple[str, str]] = ()) -> list[dict[str, Any]]:
    """One row per distinct use (kind, id, region, image) of an image in ``images``.

    ``images``: image id -> the build image it is; ``histories``: recipe -> its builds;
    ``created``: image id (recipe images and base AMIs) -> creation date; ``skip``: (kind,
    id) pairs that are not users (a recipe's own ``latest`` parameter). Standby launch
    template versions (``ImageUse.standby``) are not listed."""
    skipped = set(skip)
    builds = {(r, str(b["build_id"])): b for r, h in histories.items() for b in h}
    seen: set[tuple[str, str, str, str]] = set()
    out = []
    for use in uses:
        image = images.get(use.image_id)
        key = (use.kind, use.id, use.region, use.image_id)
        if image is None or use.standby or key in seen or (use.kind, use.id) in skipped:
            continue
        seen.add(key)
        build = builds.get((image.recipe, image.build_id), {})
        image_created = created.get(image.image_id) or image.created_at or None
        base_created = created.get(image.base_ami) if image.base_ami else None
        out.append({
            "kind": use.kind, "id": use.id, "region": use.region, "recipe": image.recipe,
            "image_id": image.image_id, "build_id": image.build_id,
            "releases_behind": releases_behind(build, histories.get(image.recipe, ())),
            "image_created_at": image_created,
            "image_age_days": age_days(image_created, now),
            "base_ami": image.base_ami, "base_age_days": age_days(base_created, now),
            "description": use.description})
    out.sort(key=_row_order)
    return out


def _row_order(row: Mapping[str, Any]) -> tuple[str, int, str, str, str, str]:
    """By recipe, the most releases behind first, then region, kind and id."""
    return (row["recipe"], -int(row["releases_behind"]), row["region"], row["kind"],
            row["id"], row["image_id"])


def stale(found: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``--stale-only``: the rows of images with a newer release."""
    return [r for r in found if r["releases_behind"] > 0]


def older_than(found: Iterable[Mapping[str, Any]], days: float, now: datetime) -> list[str]:
    """``--older-than DAYS``: the image ids of rows whose image is more than ``days`` old
    (exact age). A row whose image date is unknown is not counted."""
    limit = timedelta(days=days)
    return sorted({r["image_id"] for r in found if r.get("image_created_at")
                   and now - parse_time(r["image_created_at"]) > limit})
