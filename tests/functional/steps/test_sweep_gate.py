"""The sweeper on the local cloud: it repairs a ``latest`` parameter that names a missing
image, and a region that does not answer fails only its own rows (no traceback, the other
regions swept). The catalog and recipe store are small in-memory fakes, as in
test_prune_regions; EC2 and SSM are the local cloud's.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from amiforge.aws.session import AwsContext
from amiforge.core.tags import BUILD_ID, RECIPE
from amiforge.steps.env import StepEnv
from amiforge.steps.sweep import sweep

HOME = "us-east-1"
BASE = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"


class FakeStore:
    def __init__(self, documents: list[dict[str, Any]]) -> None:
        self.documents = documents

    def all_current(self) -> list[dict[str, Any]]:
        return [{"name": doc["name"], "document": doc} for doc in self.documents]


class FakeCatalog:
    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = {(r["recipe"], r["build_id"]): dict(r) for r in records}

    def history(self, recipe: str) -> list[dict[str, Any]]:
        return sorted((dict(r) for (name, _), r in self.records.items() if name == recipe),
                      key=lambda r: r["created_at"], reverse=True)

    def get(self, recipe: str, build_id: str) -> dict[str, Any] | None:
        record = self.records.get((recipe, build_id))
        return dict(record) if record else None

    # The sweeper's bounded reads (aws/catalog.py): in-flight builds, AVAILABLE builds.
    def in_flight(self, recipe: str) -> list[dict[str, Any]]:
        return [r for r in self.history(recipe) if r.get("status") in ("STARTING", "BUILDING")]

    def available(self, recipe: str) -> list[dict[str, Any]]:
        return [r for r in self.history(recipe) if r.get("status") == "AVAILABLE"]


@pytest.fixture()
def aws(local_cloud: Any) -> AwsContext:
    return AwsContext(region=HOME, endpoint_url=local_cloud.endpoint)


def make_env(aws: AwsContext, documents: list[dict[str, Any]],
             records: list[dict[str, Any]]) -> StepEnv:
    env = StepEnv(catalog_table="catalog", recipes_table="recipes", aws=aws)
    env.__dict__["store"] = FakeStore(documents)  # cached_property: set it directly
    env.__dict__["catalog"] = FakeCatalog(records)
    return env


def available(aws: AwsContext, recipe: str, days_old: int) -> dict[str, Any]:
    """An AVAILABLE build with its (tagged) image in the home region."""
    build_id = f"{recipe}-{uuid.uuid4().hex[:20]}"
    ec2 = aws.client("ec2")
    image = ec2.register_image(Name=build_id, RootDeviceName="/dev/xvda")["ImageId"]
    ec2.create_tags(Resources=[image], Tags=[{"Key": RECIPE, "Value": recipe},
                                             {"Key": BUILD_ID, "Value": build_id}])
    created = datetime.now(UTC) - timedelta(days=days_old)
    return {"recipe": recipe, "build_id": build_id, "status": "AVAILABLE", "image_id": image,
            "images": {HOME: image}, "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ")}


def latest(aws: AwsContext, recipe: str) -> str:
    return aws.client("ssm").get_parameter(Name=f"/amiforge/{recipe}/latest")[
        "Parameter"]["Value"]


def test_sweep_points_latest_at_the_newest_existing_image_and_reports_it(
        aws: AwsContext) -> None:
    recipe = f"repair-{uuid.uuid4().hex[:8]}"
    older, newer = available(aws, recipe, 2), available(aws, recipe, 1)
    aws.client("ssm").put_parameter(Name=f"/amiforge/{recipe}/latest", Type="String",
                                    DataType="aws:ec2:image", Value=newer["image_id"])
    aws.client("ec2").deregister_image(ImageId=newer["image_id"])  # gone by hand
    env = make_env(aws, [{"name": recipe, "image": {}}], [older, newer])

    planned = [a for a in sweep({"dry_run": True}, env)["actions"] if a["kind"] == "latest"]
    assert latest(aws, recipe) == newer["image_id"]  # a dry run changes nothing
    done = [a for a in sweep({}, env)["actions"] if a["kind"] == "latest"]

    for rows, outcome in ((planned, "planned"), (done, "done")):
        (row,) = rows
        assert (row["recipe"], row["action"], row["outcome"], row["build_id"]) == (
            recipe, "repair-latest", outcome, older["build_id"])
        assert row["reason"] == (f"latest named {newer['image_id']}, which does not exist; "
                                 f"the newest AVAILABLE image is {older['image_id']}")
    assert latest(aws, recipe) == older["image_id"]
    assert [a for a in sweep({"dry_run": True}, env)["actions"]
            if a["kind"] == "latest" and a["recipe"] == recipe] == []


def test_an_unreachable_region_fails_only_its_own_rows(aws: AwsContext) -> None:
    far, near = f"far-{uuid.uuid4().hex[:8]}", f"near-{uuid.uuid4().hex[:8]}"
    good = available(aws, near, 1)
    aws.client("ssm").put_parameter(Name=f"/amiforge/{near}/latest", Type="String",
                                    DataType="aws:ec2:image", Value=good["image_id"])
    # A FAILED build of the near recipe left an image behind in the home region.
    failed = available(aws, near, 0)
    failed["status"] = "FAILED"
    env = make_env(aws, [{"name": far, "image": {"regions": ["zz-fake-9"]}},
                         {"name": near, "image": {}}], [good, failed])

    report = sweep({}, env)

    assert report["regions"] == [HOME, "zz-fake-9"]
    errors = [a for a in report["actions"] if a["outcome"] == "error"]
    assert {(a["kind"], a["region"]) for a in errors} == {("region", "zz-fake-9")}
    assert errors[0]["reason"]
    (removed,) = [a for a in report["actions"] if a["resource"] == failed["image_id"]]
    assert (removed["action"], removed["outcome"]) == ("deregister", "done")
    assert aws.client("ec2").describe_images(ImageIds=[good["image_id"]])["Images"]
