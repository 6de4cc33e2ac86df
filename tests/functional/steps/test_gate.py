"""The deletion gate's facts and removals (``steps/gate.py``) on the local cloud: only an
ended build's own images go, never one ``latest`` names, one in use, or another stack's;
a snapshot a kept image stands on stays; a region whose ``latest`` cannot be read keeps
everything there (fail closed); a dry run asks the same and removes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from tests.helpers import (
    build_id_of,
    image_exists,
    snapshot_exists,
    stack_resources,
    tagged_image,
    unique,
)

from amiforge.aws.session import AwsContext
from amiforge.core.deletion import Owner
from amiforge.steps.env import StepEnv
from amiforge.steps.gate import Gate

REASON = "build failed"
# A home region of the module's own: the gate's usage scan reads every instance, launch
# template and parameter of the region, and the other modules' are not its business.
HOME = "us-west-1"


@pytest.fixture(scope="module")
def aws(local_cloud: Any) -> AwsContext:
    return AwsContext(region=HOME, endpoint_url=local_cloud.endpoint)


@pytest.fixture(scope="module")
def stack(aws: AwsContext) -> StepEnv:
    return stack_resources(aws)


def described(env: StepEnv, *image_ids: str, region: str | None = None) -> list[dict]:
    return env.client("ec2", region).describe_images(ImageIds=list(image_ids))["Images"]


def test_only_an_ended_builds_own_unused_unnamed_images_go(env: StepEnv) -> None:
    recipe = unique("gate")
    build_id = build_id_of(recipe)
    doomed, doomed_snaps = tagged_image(env, recipe, build_id, stack=env.stack_name)
    named, named_snaps = tagged_image(env, recipe, build_id, stack=env.stack_name)
    used, _ = tagged_image(env, recipe, build_id, stack=env.stack_name)
    foreign, _ = tagged_image(env, recipe, build_id, stack="someone-elses-stack")
    env.client("ssm").put_parameter(Name=f"/amiforge/{recipe}/latest", Value=named,
                                    Type="String", DataType="aws:ec2:image")
    user = env.client("ec2").run_instances(ImageId=used, MinCount=1, MaxCount=1,
                                           InstanceType="t3.micro")["Instances"][0]
    owner = Owner(recipe, build_id, stack=env.stack_name)
    record = {"recipe": recipe, "build_id": build_id, "status": "FAILED"}
    images = described(env, doomed, named, used, foreign)

    planned = Gate(env, dry_run=True).remove_images(HOME, images, owner, record, REASON)
    assert all(image_exists(env, i) for i in (doomed, named, used, foreign))
    rows = Gate(env).remove_images(HOME, images, owner, record, REASON)

    for table in (planned, rows):
        by_resource = {r["resource"]: (r["action"], r["reason"]) for r in table}
        assert by_resource[doomed] == ("deregister", REASON)
        assert by_resource[named] == ("keep", f"latest names it in {HOME}")
        assert by_resource[used][0] == "keep" and user["InstanceId"] in by_resource[used][1]
        assert by_resource[foreign] == ("keep", f"made by stack 'someone-elses-stack', not "
                                                f"{env.stack_name!r}")
    assert {r["resource"]: r["outcome"] for r in rows if r["kind"] == "image"}[doomed] == "done"
    assert not image_exists(env, doomed)
    assert not any(snapshot_exists(env, s) for s in doomed_snaps)
    assert all(image_exists(env, i) for i in (named, used, foreign))
    assert all(snapshot_exists(env, s) for s in named_snaps)


def test_a_live_or_unknown_build_keeps_everything(env: StepEnv) -> None:
    recipe = unique("gate")
    build_id = build_id_of(recipe)
    image, _ = tagged_image(env, recipe, build_id)
    owner = Owner(recipe, build_id)
    for record, why in (({"status": "BUILDING"}, f"build {build_id} is BUILDING: only an "
                                                 "ended build's are removed"),
                        (None, f"build {build_id} is not in this stack's catalog")):
        (row,) = Gate(env).remove_images(HOME, described(env, image), owner, record, REASON)
        assert (row["action"], row["reason"]) == ("keep", why)
    # A pattern is never an owner: nothing of the build is matched by it.
    (row,) = Gate(env).remove_images(HOME, described(env, image), Owner(recipe, f"{recipe}-*"),
                                     {"status": "FAILED"}, REASON)
    assert row["action"] == "keep" and "nothing is matched by pattern" in row["reason"]
    assert image_exists(env, image)


@pytest.mark.usefixtures("short_client_backoff")
def test_a_region_whose_latest_cannot_be_read_keeps_its_images(env: StepEnv) -> None:
    recipe = unique("gate")
    build_id = build_id_of(recipe)
    image, _ = tagged_image(env, recipe, build_id)
    gate = Gate(env)
    facts = gate.image_facts(described(env, image)[0], "zz-fake-9", Owner(recipe, build_id),
                             {"status": "FAILED"})
    assert facts.latest == {}
    assert facts.use_unknown and facts.use_unknown.startswith("latest in zz-fake-9 unreadable")
