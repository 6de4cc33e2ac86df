"""``amiforge fleet [RECIPE...]``: every user of every image of the recipes, and how stale.

It reads what retention reads, with the same code: the deletion gate's per-region usage
scan (:meth:`amiforge.steps.gate.Gate.usage`, i.e. :func:`amiforge.aws.usage.scan_uses`),
run once per region for the images of every recipe asked about, not once per recipe.
The regions are the home region, each recipe's copy regions (``image.regions``) and every
region a build's ``images`` map names. A region that cannot be read (unreachable, access
denied, an ``resolve:ssm:`` parameter that cannot be read) is reported in ``errors`` with
the reason and hides nothing else. The arithmetic (releases behind, ages, the stale
filter, the ``--older-than`` gate) is :mod:`amiforge.core.fleet`.

A recipe's own ``/amiforge/<recipe>/latest`` parameter names its newest image by design;
it is the publication, not a user, and is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from amiforge.aws import ssm as ssm_api
from amiforge.aws.usage import creation_dates
from amiforge.core import fleet as rules
from amiforge.core.in_use import SSM_PARAMETER, ImageUse
from amiforge.ops.lookups import require_known
from amiforge.steps.env import StepEnv
from amiforge.steps.gate import Gate, describe_failure


@dataclass
class FleetReport:
    users: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    older: list[str] = field(default_factory=list)  # image ids past --older-than


def _copy_regions(document: Any) -> list[str]:
    image = document.get("image") if isinstance(document, dict) else None
    regions = image.get("regions") if isinstance(image, dict) else None
    return [str(r) for r in regions or [] if isinstance(r, str)]


def fleet(env: StepEnv, recipes: Sequence[str] = (), *, stale_only: bool = False,
          older_than: float | None = None, now: datetime | None = None) -> FleetReport:
    """The users of the images of ``recipes`` (every published recipe without); an
    unknown name raises NotFound (exit 2) before anything is scanned."""
    now = now or datetime.now(UTC)
    for name in recipes:
        require_known(env, name)
    names = sorted(set(recipes)) or sorted(r["name"] for r in env.store.all_current())
    documents = {name: (env.store.current(name) or {}).get("document") for name in names}
    histories = {name: env.catalog.history(name) for name in names}
    images: dict[str, rules.BuiltImage] = {}
    regions: dict[str, set[str]] = {env.region: set()}
    for name in names:
        for region in _copy_regions(documents[name]):
            regions.setdefault(region, set())
        for built in rules.images_of(name, histories[name], env.region):
            images[built.image_id] = built
            regions.setdefault(built.region, set()).add(built.image_id)
    report = FleetReport()
    gate = Gate(env, dry_run=True)
    uses: list[ImageUse] = []
    created: dict[str, str] = {}
    dated: dict[str, set[str]] = {}  # region -> image ids whose creation date to read
    for region, ids in sorted(regions.items()):
        if not ids:
            continue
        usage = gate.usage(region, ids)  # the one scan of the region
        if usage.unknown:
            report.errors.append({"region": region, "reason": usage.unknown})
            continue
        uses += usage.found
        dated.setdefault(region, set()).update(u.image_id for u in usage.found)
    # Base AMIs live in the home region (copies are made from the home image).
    dated.setdefault(env.region, set()).update(
        base for u in uses if (base := images[u.image_id].base_ami))
    for region, wanted in sorted(dated.items()):
        if not wanted:
            continue
        try:  # one DescribeImages per region
            created.update(creation_dates(env.client("ec2", region), wanted))
        except Exception as err:  # ages fall back to the catalog's dates
            report.errors.append({"region": region, "reason": "could not read image "
                                  f"creation dates: {describe_failure(err)}"})
    own = [(SSM_PARAMETER, ssm_api.latest_parameter_name(name)) for name in names]
    report.users = rules.rows(uses, images, histories, created, now=now, skip=own)
    if stale_only:
        report.users = [dict(r) for r in rules.stale(report.users)]
    if older_than is not None:
        report.older = rules.older_than(report.users, older_than, now)
    return report
