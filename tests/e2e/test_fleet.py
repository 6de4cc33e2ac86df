"""``amiforge fleet`` through the real CLI on the local cloud: a recipe built twice, its
first image run by an instance and named by a launch template; both are listed one
release behind, ``--stale-only`` keeps them, ``--older-than`` gates, an unknown recipe
exits 2, and a region that cannot be read is reported without hiding the others."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from amiforge.aws.usage import scan_uses
from amiforge.steps import gate as gate_module

pytestmark = pytest.mark.e2e
UNREADABLE = "zz-fake-9"


def fleet_json(amiforge: Any, *args: str, code: int = 0) -> Any:
    result = amiforge("fleet", *args, output="json")
    assert result.exit_code == code, (args, result.output)
    return json.loads(result.stdout)


def test_fleet_lists_users_of_an_older_image_one_release_behind(
        amiforge: Any, recipe_dir: Any, aws: Any, stack: Any, shape_problems: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    name, other = f"fleet-{uuid.uuid4().hex[:6]}", f"fleet-other-{uuid.uuid4().hex[:6]}"
    recipe_dir(other)
    assert amiforge("publish", "--wait", str(recipe_dir(name))).exit_code == 0
    assert amiforge("build", "--wait", "--rebuild", name).exit_code == 0
    newest, first = [b for b in stack.catalog.history(name) if b["status"] == "AVAILABLE"]
    old = first["image_id"]
    ec2 = aws.client("ec2")
    instance = ec2.run_instances(ImageId=old, MinCount=1, MaxCount=1,
                                 InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    template = ec2.create_launch_template(
        LaunchTemplateName=f"lt-{name}", LaunchTemplateData={"ImageId": old}
    )["LaunchTemplate"]["LaunchTemplateId"]

    shown = fleet_json(amiforge, name)
    users = {(u["kind"], u["id"]): u for u in shown["users"]}
    assert set(users) == {("instance", instance), ("launch_template_version", f"{template}:1")}
    for user in users.values():
        assert user["recipe"] == name and user["region"] == aws.region
        assert (user["image_id"], user["build_id"]) == (old, first["build_id"])
        assert user["releases_behind"] == 1
        assert user["image_age_days"] == 0 and user["base_age_days"] is not None
    assert shown["errors"] == []
    assert shape_problems("fleet", shown) == []

    assert fleet_json(amiforge, "--stale-only", name)["users"] == shown["users"]
    # One usage scan per region, not one per recipe: both recipes live only at home.
    scans: list[str] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        scans.append(kwargs["region"])
        return scan_uses(*args, **kwargs)

    monkeypatch.setattr(gate_module, "scan_uses", counted)
    both = fleet_json(amiforge, name, other)
    monkeypatch.undo()
    assert scans == [aws.region] and both["users"] == shown["users"]
    assert stack.catalog.latest(other) is not None  # it had images to look for
    fleet_json(amiforge, "--older-than", "30", name)
    gated = amiforge("fleet", "--older-than", "0", name)
    assert gated.exit_code == 1 and f"older than 0 day(s): {old}" in gated.stdout

    # The newest image in use too: listed, 0 behind, and not stale.
    ec2.create_launch_template_version(LaunchTemplateId=template,
                                       LaunchTemplateData={"ImageId": newest["image_id"]})
    again = fleet_json(amiforge, name)["users"]
    assert {(u["id"], u["releases_behind"]) for u in again} == {
        (instance, 1), (f"{template}:1", 1), (f"{template}:2", 0)}
    assert len(fleet_json(amiforge, "--stale-only", name)["users"]) == 2

    # A copy in a region that cannot be read: an error naming it; the home region's
    # users are still listed.
    stack.catalog.update(name, first["build_id"],
                         images={**first["images"], UNREADABLE: "ami-0123456789abcdef0"})
    broken = fleet_json(amiforge, name)
    assert [e["region"] for e in broken["errors"]] == [UNREADABLE]
    assert UNREADABLE in broken["errors"][0]["reason"]
    assert len(broken["users"]) == 3

    text = amiforge("fleet", name)
    assert text.exit_code == 0 and instance in text.stdout and "Traceback" not in text.output
    assert f"error in {UNREADABLE}: " in text.stdout


def test_fleet_of_an_unknown_recipe_exits_2(amiforge: Any) -> None:
    unknown = f"nope-{uuid.uuid4().hex[:6]}"
    result = amiforge("fleet", unknown)
    assert result.exit_code == 2
    assert f"'{unknown}'" in result.stderr
