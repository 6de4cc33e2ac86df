"""The core's region list against botocore's bundled endpoint and partition data."""

from __future__ import annotations

from botocore.loaders import Loader

from amiforge.core import rules
from amiforge.core.regions import REGIONS


def _botocore_regions() -> set[str]:
    loader = Loader()
    found: set[str] = set()
    for data in (loader.load_data("endpoints"), loader.load_data("partitions")):
        for partition in data["partitions"]:
            found |= {name for name in partition.get("regions", {})
                      if not name.endswith("-global")}
    return found


def test_every_region_botocore_knows_is_accepted() -> None:
    missing = _botocore_regions() - REGIONS
    assert not missing, f"add these regions to amiforge.core.regions.REGIONS: {sorted(missing)}"


def test_every_listed_region_is_known_to_botocore() -> None:
    assert REGIONS - _botocore_regions() == set()


def test_region_shaped_names_that_do_not_exist_are_refused() -> None:
    assert rules.check_region("eu-west-1") is None
    assert rules.check_region("zz-fake-9") == (
        "'zz-fake-9' is not an AWS region: expected a region name like eu-west-1 "
        "(see `aws ec2 describe-regions --all-regions`)")
    assert rules.check_region("eu-west-99") is not None
