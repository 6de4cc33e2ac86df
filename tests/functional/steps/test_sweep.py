"""The sweeper on the local cloud: a build whose execution ended without a result is
marked FAILED and cleaned, one over its budget is stopped too, one in progress is left
alone; it repairs a ``latest`` parameter that names a missing image; and a region that
does not answer fails only its own rows (no traceback, the other regions swept).

Was test_sweep_gate.py, whose FakeStore and FakeCatalog are now the module's own
recipe-store and catalog tables (every assertion kept).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from tests.helpers import (
    TaskTokens,
    build_id_of,
    instance_state,
    iso,
    raw_builder,
    seed,
    stack_resources,
    unique,
)

from amiforge.aws.session import AwsContext
from amiforge.core.tags import BUILD_ID, RECIPE
from amiforge.steps.env import StepEnv
from amiforge.steps.sweep import sweep

# A home region of the module's own: the sweep lists every tagged builder, image and
# snapshot of its regions, and the other modules' leftovers are not its business.
HOME = "us-west-2"
# A sweep reads every region the catalog names, the unreachable one a test here publishes
# to included: its calls fail after every retry.
pytestmark = pytest.mark.usefixtures("short_client_backoff")


@pytest.fixture(scope="module")
def aws(local_cloud: Any) -> AwsContext:
    return AwsContext(region=HOME, endpoint_url=local_cloud.endpoint)


@pytest.fixture(scope="module")
def stack(aws: AwsContext) -> StepEnv:
    """Tables of this module's own too: the sweep reads every published recipe and
    BUILDING record, and repairs every recipe's latest."""
    return stack_resources(aws)


@pytest.fixture(scope="module")
def tokens(aws: AwsContext) -> Iterator[TaskTokens]:
    machine = TaskTokens(aws)
    yield machine
    machine.close()


def publish_bare(env: StepEnv, name: str, regions: list[str] | None = None) -> None:
    """A published recipe item as the sweep reads it (name, regions); the document is
    not parsed by the sweep beyond ``image.regions``."""
    env.store.publish(name, "ab" * 32, {"name": name, "image": {"regions": regions or []}},
                      None)


def available(aws: AwsContext, recipe: str, days_old: float) -> dict[str, Any]:
    """An AVAILABLE build with its (tagged) image in the home region."""
    build_id = f"{recipe}-{uuid.uuid4().hex[:20]}"
    ec2 = aws.client("ec2")
    image = ec2.register_image(Name=build_id, RootDeviceName="/dev/xvda")["ImageId"]
    ec2.create_tags(Resources=[image], Tags=[{"Key": RECIPE, "Value": recipe},
                                             {"Key": BUILD_ID, "Value": build_id}])
    return {"recipe": recipe, "build_id": build_id, "status": "AVAILABLE", "image_id": image,
            "images": {HOME: image}, "created_at": iso(days_old)}


def latest(aws: AwsContext, recipe: str) -> str:
    return aws.client("ssm").get_parameter(Name=f"/amiforge/{recipe}/latest")[
        "Parameter"]["Value"]


def test_sweep_points_latest_at_the_newest_existing_image_and_reports_it(
        aws: AwsContext, env: StepEnv) -> None:
    recipe = f"repair-{uuid.uuid4().hex[:8]}"
    older, newer = available(aws, recipe, 2), available(aws, recipe, 1)
    aws.client("ssm").put_parameter(Name=f"/amiforge/{recipe}/latest", Type="String",
                                    DataType="aws:ec2:image", Value=newer["image_id"])
    aws.client("ec2").deregister_image(ImageId=newer["image_id"])  # gone by hand
    publish_bare(env, recipe)
    seed(env, older, newer)

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


def test_an_unreachable_region_fails_only_its_own_rows(aws: AwsContext, env: StepEnv) -> None:
    far, near = f"far-{uuid.uuid4().hex[:8]}", f"near-{uuid.uuid4().hex[:8]}"
    good = available(aws, near, 1)
    aws.client("ssm").put_parameter(Name=f"/amiforge/{near}/latest", Type="String",
                                    DataType="aws:ec2:image", Value=good["image_id"])
    # A FAILED build of the near recipe left an image behind in the home region.
    failed = available(aws, near, 0)
    failed["status"] = "FAILED"
    publish_bare(env, far, ["zz-fake-9"])
    publish_bare(env, near)
    seed(env, good, {**failed, "status": "FAILED"})

    report = sweep({}, env)

    assert report["regions"] == [HOME, "zz-fake-9"]
    errors = [a for a in report["actions"] if a["outcome"] == "error"]
    assert {(a["kind"], a["region"]) for a in errors} == {("region", "zz-fake-9")}
    assert errors[0]["reason"]
    (removed,) = [a for a in report["actions"] if a["resource"] == failed["image_id"]]
    assert (removed["action"], removed["outcome"]) == ("deregister", "done")
    assert aws.client("ec2").describe_images(ImageIds=[good["image_id"]])["Images"]


def building(env: StepEnv, recipe: str, execution_arn: str, days_old: float = 0
             ) -> tuple[str, str]:
    """A BUILDING record of ``recipe`` with a live builder; (build id, instance id)."""
    build_id = build_id_of(recipe)
    seed(env, {"recipe": recipe, "build_id": build_id, "status": "BUILDING",
               "execution_arn": execution_arn, "created_at": iso(days_old)})
    return build_id, raw_builder(env, recipe, build_id, "#!/bin/bash\n# amiforge-sim: hang\n")


def rows_of(report: dict[str, Any], build_id: str) -> dict[str, tuple[str, str]]:
    return {a["kind"]: (a["action"], a["outcome"]) for a in report["actions"]
            if a["build_id"] == build_id}


def test_builds_that_ended_without_a_result_or_ran_too_long_are_failed_and_cleaned(
        env: StepEnv, tokens: TaskTokens) -> None:
    recipe = unique("swept")
    publish_bare(env, recipe)
    gone, gone_builder = building(env, recipe, f"{tokens.machine}:nothing-ran".replace(
        ":stateMachine:", ":execution:"))
    slow_execution, _ = tokens.wait()
    slow, slow_builder = building(env, recipe, slow_execution, days_old=3)
    live_execution, _ = tokens.wait()
    live, live_builder = building(env, recipe, live_execution)

    planned = sweep({"dry_run": True}, env)
    assert env.catalog.get(recipe, gone)["status"] == "BUILDING"
    report = sweep({}, env)

    assert rows_of(planned, gone) == {"record": ("mark-failed", "planned"),
                                      "instance": ("terminate", "planned")}
    assert rows_of(report, gone) == {"record": ("mark-failed", "done"),
                                     "instance": ("terminate", "done")}
    assert env.catalog.get(recipe, gone)["reason"].startswith(
        "swept: the build's execution no longer exists")
    assert rows_of(report, slow)["execution"] == ("stop", "done")
    assert tokens.status(slow_execution) == "ABORTED"
    assert env.catalog.get(recipe, slow)["status"] == "FAILED"
    assert [instance_state(env, i) in ("shutting-down", "terminated")
            for i in (gone_builder, slow_builder, live_builder)] == [True, True, False]
    assert rows_of(report, live) == {"instance": ("leave", "planned")}
    assert env.catalog.get(recipe, live)["status"] == "BUILDING"
    assert tokens.status(live_execution) == "RUNNING"
