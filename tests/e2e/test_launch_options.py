"""Issue 22 journeys (what a lambda_build_ami user relies on), through the CLI and the
deployed stack: build.tags on the builder and its volumes, images named by day, a name
already taken failing the build with the reason, a pinned base.image_id that base
releases do not move, and `build --base` building once on a given base."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from amiforge.core.tags import BUILD_ID, ROLE
from amiforge.localcloud.testing import images_of_build
from amiforge.steps.detect import detect

pytestmark = pytest.mark.e2e


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def write(directory: Path, name: str, *, base: str, build: str = "", image: str = "") -> Path:
    (directory / "scripts").mkdir(parents=True, exist_ok=True)
    (directory / "scripts" / f"{name}.sh").write_text("#!/bin/bash\necho hello\n")
    (directory / f"{name}.yaml").write_text(
        f"name: {name}\nbase: {base}\nbuild:\n  platform: linux\n"
        f"  user_data: scripts/{name}.sh\n  timeout_minutes: 30\n  retries: 0\n"
        + textwrap.indent(textwrap.dedent(build), "  ")
        + (f"image:\n{textwrap.indent(textwrap.dedent(image), '  ')}" if image else ""))
    return directory


def publish(amiforge: Any, directory: Path) -> list[dict[str, Any]]:
    result = amiforge("publish", "--no-detect", str(directory), output="json")
    assert result.exit_code == 0, result.output
    recipes: list[dict[str, Any]] = json.loads(result.stdout)["recipes"]
    return recipes


def build(amiforge: Any, *args: str) -> tuple[int, list[dict[str, Any]]]:
    result = amiforge("build", "--wait", *args, output="json")
    return result.exit_code, json.loads(result.stdout)["builds"]


def tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def builder_of(aws: Any, build_id: str) -> dict[str, Any]:
    (builder,) = [i for r in aws.client("ec2").describe_instances(Filters=[
        {"Name": f"tag:{BUILD_ID}", "Values": [build_id]}])["Reservations"]
        for i in r["Instances"]]
    return builder


def test_build_tags_are_on_the_builder(amiforge: Any, aws: Any,
                                                       tmp_path: Path) -> None:
    name = unique("tagged")
    publish(amiforge, write(tmp_path, name, base=f"{{ssm_parameter: {AL2023}}}",
                            build="tags: {cost-center: '4711', owner: team-web}\n",
                            image="tags: {team: web}\n"))
    code, (built,) = build(amiforge, name)
    assert code == 0 and built["status"] == "AVAILABLE", built

    # Terminated by now, and still describable: the tags it was launched with.
    builder = builder_of(aws, built["build_id"])
    assert tags(builder)["cost-center"] == "4711" and tags(builder)["owner"] == "team-web"
    assert tags(builder)[ROLE] == "builder"
    # (Its volumes were deleted with it; tests/functional/steps/test_launch.py sees the
    # same tags on a live builder's volume.)
    # The image keeps image.tags, not the builder's.
    (image,) = images_of_build(aws.client("ec2"), built["build_id"])
    assert tags(image)["team"] == "web" and "cost-center" not in tags(image)


def test_an_image_named_by_day_and_a_second_build_that_day_fails_with_the_reason(
        amiforge: Any, aws: Any, tmp_path: Path) -> None:
    name = unique("daily")
    publish(amiforge, write(tmp_path, name, base=f"{{ssm_parameter: {AL2023}}}",
                            image="name: '{recipe}-{date:%Y%m%d}'\n"))
    code, (first,) = build(amiforge, name)
    assert code == 0 and first["status"] == "AVAILABLE", first
    (image,) = images_of_build(aws.client("ec2"), first["build_id"])
    day = image["CreationDate"][:10].replace("-", "")
    assert image["Name"] == f"{name}-{day}"

    code, (second,) = build(amiforge, "--rebuild", name)

    assert code == 1 and second["status"] == "FAILED", second
    assert (f"image name '{name}-{day}' is already taken by {first['image_id']}"
            in second["reason"]), second["reason"]
    assert images_of_build(aws.client("ec2"), second["build_id"]) == []
    assert builder_of(aws, second["build_id"])["State"]["Name"] == "terminated"
    # The first image stays latest.
    latest = amiforge("latest", name, output="json")
    assert json.loads(latest.stdout)["image_id"] == first["image_id"]


def test_a_pinned_base_builds_on_that_image_and_a_base_release_does_not_rebuild(
        amiforge: Any, aws: Any, local_cloud: Any, stack: Any, tmp_path: Path) -> None:
    family = unique("pinfam")
    parameter = f"/aws/service/{family}/latest"
    pinned = local_cloud.release_base(name=f"{family}-1", owner="amazon",
                                      ssm_parameter=parameter)
    name = unique("pinned")
    publish(amiforge, write(tmp_path, name, base=f"{{image_id: {pinned}}}"))
    code, (built,) = build(amiforge, name)
    assert code == 0 and built["status"] == "AVAILABLE", built
    assert built["base_ami"] == pinned
    (image,) = images_of_build(aws.client("ec2"), built["build_id"])
    assert tags(image)["amiforge:base-ami"] == pinned

    local_cloud.release_base(name=f"{family}-2", owner="amazon", ssm_parameter=parameter)
    report = detect({"recipes": [name], "trigger": "test"}, stack)

    (decision,) = report["decisions"]
    assert (report["started"], decision["reason"]) == (0, "up to date"), decision


def test_build_with_base_builds_once_on_that_base(amiforge: Any, aws: Any, local_cloud: Any,
                                                 stack: Any, tmp_path: Path) -> None:
    name = unique("onebase")
    publish(amiforge, write(tmp_path, name, base=f"{{ssm_parameter: {AL2023}}}"))
    code, (regular,) = build(amiforge, name)
    assert code == 0 and regular["status"] == "AVAILABLE", regular
    other = local_cloud.release_base(name=unique("known-good"), owner="amazon")

    code, (one_off,) = build(amiforge, name, "--base", other)

    assert code == 0 and one_off["status"] == "AVAILABLE", one_off
    assert one_off["base_ami"] == other and one_off["build_id"] != regular["build_id"]
    assert stack.catalog.get(name, one_off["build_id"])["trigger"] == "manual-base"
    assert tags(builder_of(aws, one_off["build_id"]))["amiforge:base-ami"] == other
    # The recipe is unchanged and still tracks its own base: nothing to rebuild.
    (decision,) = detect({"recipes": [name], "trigger": "test"}, stack)["decisions"]
    assert decision["reason"] == "up to date", decision
    # Once: the same base again is already built.
    again = amiforge("build", name, "--base", other, output="json")
    assert again.exit_code == 0
    assert json.loads(again.stdout)["builds"][0]["outcome"] == "already built"


@pytest.mark.parametrize(("base", "message"), [
    ("ami-123", "--base 'ami-123' is not an AMI id"),
    ("ami-00000000000000000", "--base ami-00000000000000000 does not exist"),
])
def test_build_refuses_a_malformed_or_missing_base(amiforge: Any, tmp_path: Path,
                                                   base: str, message: str) -> None:
    name = unique("badbase")
    publish(amiforge, write(tmp_path, name, base=f"{{ssm_parameter: {AL2023}}}"))
    result = amiforge("build", name, "--base", base)
    assert result.exit_code == 2
    assert message in result.output


AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"
