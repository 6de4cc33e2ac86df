"""Facts for the deletion gate, gathered once per run, and the verdicts carried out.

Every step that removes images or snapshots (finish's cleanup, RecordFailure, the cleanup
queue, the sweeper, retention) goes through :class:`Gate`: it reads what the pure gate
(``core/deletion.py``) needs - the build's catalog record, the image's tags, which image
``/amiforge/<recipe>/latest`` names in every region concerned, and the image's uses in
its region (``aws/usage.py``) - asks the gate, and hands only ``delete`` verdicts to the
executor (``aws/deletion.py``). A dry run asks the same questions and removes nothing.

Reads fail closed and one region at a time: a region whose ``latest`` parameter or
usage cannot be read (access denied, throttled past retries, unreachable) keeps every
image there, and the verdict says why; other regions go on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from amiforge.aws import deletion as executor
from amiforge.aws import ec2 as ec2_api
from amiforge.aws import ec2_lifecycle
from amiforge.aws import ssm as ssm_api
from amiforge.aws.usage import UsageUnknown, scan_uses, uses_by_image
from amiforge.core.deletion import (
    BUILD_TAG,
    ImageFacts,
    Owner,
    SnapshotFacts,
    Verdict,
    decide_image,
    decide_snapshot,
)
from amiforge.core.in_use import ImageUse
from amiforge.steps.env import StepEnv

log = logging.getLogger(__name__)


def describe_failure(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


@dataclass
class _Usage:
    checked: set[str] = field(default_factory=set)
    uses: dict[str, list[str]] = field(default_factory=dict)
    found: list[ImageUse] = field(default_factory=list)  # the same uses, one per use
    unknown: str | None = None


class Gate:
    """One run's facts (cached) and the removals it carries out."""

    def __init__(self, env: StepEnv, *, dry_run: bool = False) -> None:
        self.env = env
        self.dry_run = dry_run
        self._latest: dict[tuple[str, str], str | None | Exception] = {}
        self._usage: dict[str, _Usage] = {}
        # region -> build id -> (its images, its snapshots), read in one batch for every
        # build a run may remove (:meth:`prefetch_builds`) and kept up to date as this
        # gate removes them, so a build's images and snapshots are listed once per run.
        self._builds: dict[str, dict[str, tuple[list[dict[str, Any]],
                                                list[dict[str, Any]]]]] = {}

    # -- facts -----------------------------------------------------------------------
    def latest(self, recipe: str, region: str) -> str | None | Exception:
        """The image ``/amiforge/<recipe>/latest`` names in ``region`` (None: no such
        parameter), or the error that kept it from being read."""
        key = (recipe, region)
        if key not in self._latest:
            try:
                self._latest[key] = ssm_api.get_value(self.env.client("ssm", region),
                                                      ssm_api.latest_parameter_name(recipe))
            except Exception as err:  # unreachable region, access denied: fail closed
                log.warning("latest of %s in %s unreadable: %s", recipe, region, err)
                self._latest[key] = err
        return self._latest[key]

    def usage(self, region: str, image_ids: Iterable[str]) -> _Usage:
        """Uses of ``image_ids`` in ``region`` (one scan per region and candidate set):
        the deletion gate's facts, and what ``amiforge fleet`` lists."""
        wanted = set(image_ids)
        known = self._usage.get(region)
        if known is not None and wanted <= known.checked:
            return known
        wanted |= known.checked if known else set()
        label = "" if region == self.env.region else f" in {region}"
        found = _Usage(checked=wanted)
        try:
            found.found = scan_uses(lambda service: self.env.client(service, region), wanted,
                                    region=region, label=label)
            found.uses = uses_by_image(found.found)
        except UsageUnknown as err:
            found.unknown = err.reason
        except Exception as err:  # a kind that cannot be read keeps everything there
            found.unknown = f"could not read uses in {region}: {describe_failure(err)}"
        self._usage[region] = found
        return found

    def prefetch(self, region: str, image_ids: Iterable[str]) -> None:
        self.usage(region, image_ids)

    def prefetch_builds(self, region: str, build_ids: Iterable[str]) -> None:
        """List the images and snapshots of ``build_ids`` in ``region`` in one batch
        (one DescribeImages and one DescribeSnapshots), for :meth:`image`,
        :meth:`remove_snapshots` and the retry of what an earlier run left."""
        known = self._builds.setdefault(region, {})
        wanted = sorted(set(build_ids) - set(known))
        if not wanted:
            return
        images, snapshots = ec2_lifecycle.images_and_snapshots_of_builds(
            self.env.client("ec2", region), wanted)
        for build_id in wanted:
            known[build_id] = ([i for i in images
                                if ec2_api.tags_of(i).get(BUILD_TAG) == build_id],
                               [s for s in snapshots
                                if ec2_api.tags_of(s).get(BUILD_TAG) == build_id])

    def image(self, region: str, image_id: str, build_id: str) -> dict[str, Any] | None:
        """The image (None: EC2 no longer knows it): from the build's prefetched listing
        if it is there, else asked for by id (an image not tagged with its build)."""
        listed = self._builds.get(region, {}).get(build_id)
        for image in listed[0] if listed else ():
            if image["ImageId"] == image_id:
                return image
        return ec2_api.describe_image(self.env.client("ec2", region), image_id)

    def _build_images(self, ec2: Any, region: str, build_id: str) -> list[dict[str, Any]]:
        listed = self._builds.get(region, {}).get(build_id)
        return list(listed[0]) if listed else ec2_lifecycle.build_images(ec2, build_id)

    def _build_snapshots(self, ec2: Any, region: str, build_id: str) -> list[dict[str, Any]]:
        listed = self._builds.get(region, {}).get(build_id)
        return list(listed[1]) if listed else ec2_lifecycle.build_snapshots(ec2, build_id)

    def _forget(self, region: str, build_id: str, kind: int, key: str, resource: str) -> None:
        """A removed image (kind 0) or snapshot (1) leaves the build's cached listing."""
        listed = self._builds.get(region, {}).get(build_id)
        if listed:
            listed[kind][:] = [r for r in listed[kind] if r[key] != resource]

    def image_facts(self, image: dict[str, Any], region: str, owner: Owner,
                    record: Mapping[str, Any] | None, *, retention_chose: bool = False,
                    with_usage: bool = True) -> ImageFacts:
        """The gate's facts about one image. ``with_usage=False`` leaves its uses out: a
        first look, since every rule only ever keeps, a verdict of keep without them is
        final and spares the region's usage scan."""
        image_id = image["ImageId"]
        latest: dict[str, str | None] = {}
        unknown: list[str] = []
        # An image id belongs to one region, so only that region's parameter can name it
        # (``aws:ec2:image`` parameters are checked against their own region's images):
        # another region that cannot be read changes nothing here.
        value = self.latest(owner.recipe, region)
        if isinstance(value, Exception):
            unknown.append(f"latest in {region} unreadable: {describe_failure(value)}")
        else:
            latest[region] = value
        usage = self.usage(region, [image_id]) if with_usage else _Usage()
        if usage.unknown:
            unknown.append(usage.unknown)
        record = record or {}
        images = {*(record.get("images") or {}).values(), record.get("image_id")}
        return ImageFacts(image_id=image_id, region=region, tags=ec2_api.tags_of(image),
                          owner=owner, record_status=record.get("status"),
                          record_images=frozenset(i for i in images if i), latest=latest,
                          retention_chose=retention_chose,
                          uses=tuple(usage.uses.get(image_id, [])),
                          use_unknown="; ".join(unknown) or None)

    # -- decisions and removals ------------------------------------------------------
    def remove_images(self, region: str, images: list[dict[str, Any]], owner: Owner,
                      record: Mapping[str, Any] | None, reason: str, *,
                      retention_chose: bool = False,
                      dry_run: bool | None = None,
                      snapshots: bool = True) -> list[dict[str, Any]]:
        """Ask the gate about each image, then (unless ``snapshots`` is False: the caller
        makes its own snapshot pass) about each snapshot behind a removed one; remove what
        it approves (unless a dry run). Returns one row per resource."""
        dry_run = self.dry_run if dry_run is None else dry_run
        ec2 = self.env.client("ec2", region)
        rows: list[dict[str, Any]] = []
        doomed: list[dict[str, Any]] = []
        # A first look without uses: whatever it keeps stays kept. The rest need the
        # region's usage, read once for all of them.
        first = {i["ImageId"]: decide_image(self.image_facts(
            i, region, owner, record, retention_chose=retention_chose, with_usage=False),
            reason) for i in images}
        if any(v.delete for v in first.values()):
            self.prefetch(region, [i for i, v in first.items() if v.delete])
        for image in images:
            verdict = first[image["ImageId"]]
            if verdict.delete:
                verdict = decide_image(self.image_facts(
                    image, region, owner, record, retention_chose=retention_chose), reason)
            rows.append(self._row("image", verdict))
            if verdict.delete:
                doomed.append(image)
                if not dry_run:
                    executor.deregister_approved(ec2, image["ImageId"], verdict)
                    self._forget(region, owner.build_id, 0, "ImageId", image["ImageId"])
                    rows[-1]["outcome"] = "done"
        if doomed and snapshots:
            rows += self.remove_snapshots(region, owner, record, reason,
                                          only={s for i in doomed
                                                for s in ec2_api.snapshot_ids(i)},
                                          removed={i["ImageId"] for i in doomed},
                                          dry_run=dry_run)
        return rows

    def remove_snapshots(self, region: str, owner: Owner, record: Mapping[str, Any] | None,
                         reason: str, *, only: set[str] | None = None,
                         removed: set[str] | frozenset[str] = frozenset(),
                         dry_run: bool | None = None) -> list[dict[str, Any]]:
        """The build's tagged snapshots in ``region`` (``only`` these ids, if given) that
        no registered image of the build still stands on (``removed``: images this run
        deregisters, or would in a dry run)."""
        dry_run = self.dry_run if dry_run is None else dry_run
        ec2 = self.env.client("ec2", region)
        registered = [i for i in self._build_images(ec2, region, owner.build_id)
                      if i.get("State") != "deregistered" and i["ImageId"] not in removed]
        holders: dict[str, set[str]] = {}
        for image in registered:
            for snapshot_id in ec2_api.snapshot_ids(image):
                holders.setdefault(snapshot_id, set()).add(image["ImageId"])
        rows = []
        for snapshot in self._build_snapshots(ec2, region, owner.build_id):
            if only is not None and snapshot["SnapshotId"] not in only:
                continue
            facts = SnapshotFacts(snapshot_id=snapshot["SnapshotId"], region=region,
                                  tags=ec2_api.tags_of(snapshot), owner=owner,
                                  record_status=(record or {}).get("status"),
                                  held_by=frozenset(holders.get(snapshot["SnapshotId"], ())))
            verdict = decide_snapshot(facts, reason)
            rows.append(self._row("snapshot", verdict))
            if verdict.delete and not dry_run:
                gone = executor.delete_snapshot_approved(ec2, snapshot["SnapshotId"], verdict)
                if gone:
                    self._forget(region, owner.build_id, 1, "SnapshotId",
                                 snapshot["SnapshotId"])
                rows[-1]["outcome"] = "done" if gone else "skipped: an image still uses it"
        return rows

    def _row(self, kind: str, verdict: Verdict) -> dict[str, Any]:
        return {"kind": kind, "resource": verdict.resource, "region": verdict.region,
                "action": "deregister" if kind == "image" and verdict.delete else
                ("delete" if verdict.delete else "keep"),
                "reason": verdict.reason,
                "outcome": "planned" if verdict.delete else "kept"}
