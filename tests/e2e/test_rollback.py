"""Issue 20, rollback: `amiforge rollback` moves every reader of `latest` (the SSM parameter,
`amiforge latest`, a consumer stack's Custom::LatestAmi) back to the previous image and
revokes the bad build; detection and `build` do not build its key again; retention keeps
the rollback target with keep: 1; `amiforge release` undoes it; the refusals exit 2
naming the value; a parameter write that fails undoes the whole rollback."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from click.testing import Result

from amiforge.aws import ssm as ssm_api
from amiforge.localcloud.testing import images_of_build
from amiforge.ops.builds import wait_for_builds

pytestmark = pytest.mark.e2e

STACK = "amiforge-e2e"
KEEP_ONE = "retention: {keep: 1, max_age_days: null}\n"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, (result.output, result.stderr)
    return json.loads(result.stdout)


def built(amiforge: Any, stack: Any, directory: Any, name: str) -> dict:
    """Publish ``directory``, wait for the build it starts; its catalog record."""
    (published,) = [p for p in as_json(amiforge("publish", str(directory), output="json"))
                    ["recipes"] if p["recipe"] == name]
    assert published["build_started"], published
    (done,) = wait_for_builds(stack, [{"recipe": name, "build_id": published["build_started"]}],
                              poll=0.2, timeout=180)
    assert done["status"] == "AVAILABLE", done
    return stack.catalog.get(name, done["build_id"])


def refused(result: Result, *words: str) -> str:
    """Exit 2 with one line naming ``words``, nothing on stdout, no traceback."""
    assert result.exit_code == 2, (result.output, result.stderr)
    (line,) = result.stderr.splitlines()
    assert line.startswith("amiforge: error: "), line
    for word in words:
        assert word in line, (word, line)
    assert result.stdout == "" and "Traceback" not in result.stderr
    return line


def parameter(aws: Any, name: str, region: str | None = None) -> str | None:
    return ssm_api.get_value(aws.client("ssm", region), f"/amiforge/{name}/latest")


def history(amiforge: Any, name: str) -> dict[str, dict]:
    return {b["build_id"]: b for b in as_json(amiforge("history", name, output="json"))
            ["builds"]}


def test_rollback_moves_every_reader_back_and_release_undoes_it(
        amiforge: Any, aws: Any, stack: Any, recipe_dir: Any) -> None:
    from tests.e2e.test_consumers import CUSTOM_RESOURCE, create, delete, outputs, update

    name = unique("rollback")
    good = built(amiforge, stack, recipe_dir(name, "echo v1\n", extra=KEEP_ONE), name)
    bad = built(amiforge, stack, recipe_dir(name, "echo v2\n", extra=KEEP_ONE), name)
    cfn = aws.client("cloudformation")
    consumer = create(cfn, unique("rollback-consumer"), CUSTOM_RESOURCE, AmiforgeStack=STACK,
                      Recipe=name)
    assert outputs(consumer)["ImageId"] == bad["image_id"]

    done = as_json(amiforge("rollback", name, "--reason", "v2 breaks TLS", output="json"))
    assert (done["build_id"], done["image_id"]) == (good["build_id"], good["image_id"])
    assert done["previous_build_id"] == bad["build_id"] == done["revoked"][0]["build_id"]
    assert [r["status"] for r in done["revoked"]] == ["REVOKED"]
    assert done["reason"] == "v2 breaks TLS" and done["by"] and done["notified"] is True
    assert done["parameters"] == [{"region": aws.resolved_region, "previous": bad["image_id"],
                                   "image_id": good["image_id"]}]

    # Every reader answers the previous image.
    assert parameter(aws, name) == good["image_id"]
    assert amiforge("latest", name).stdout.strip() == good["image_id"]
    refreshed = update(cfn, consumer, CUSTOM_RESOURCE, RefreshToken="2")
    assert refreshed["StackStatus"] == "UPDATE_COMPLETE", refreshed
    assert (outputs(refreshed)["ImageId"], outputs(refreshed)["BuildId"]) == (
        good["image_id"], good["build_id"])
    # Gone again, so that its instance (a use) does not keep the image from retention.
    assert delete(cfn, refreshed)["StackStatus"] == "DELETE_COMPLETE"

    # History records it: the revoked build's why/who/when, an event on both builds.
    builds = history(amiforge, name)
    revoked = builds[bad["build_id"]]
    assert (revoked["status"], revoked["reason"], revoked["rolled_back_to"]) == (
        "REVOKED", "v2 breaks TLS", good["build_id"])
    assert revoked["revoked_by"] == done["by"] and revoked["revoked_at"] == done["at"]
    assert revoked["status_meaning"].startswith("was AVAILABLE; `amiforge rollback`")
    assert [e["event"] for e in revoked["rollbacks"]] == ["revoked"]
    assert builds[good["build_id"]]["rollbacks"] == [
        {"event": "rollback_target", "at": done["at"], "by": done["by"],
         "reason": "v2 breaks TLS", "builds": [bad["build_id"]]}]
    text = amiforge("history", name).stdout
    assert f"--- rollbacks of {bad['build_id']} ---" in text and "v2 breaks TLS" in text
    # Its image is kept: nothing is deleted by a rollback.
    assert [i["ImageId"] for i in images_of_build(aws.client("ec2"), bad["build_id"])] == [
        bad["image_id"]]

    # Detection, plan and build leave the revoked key alone.
    (decision,) = [d for d in as_json(amiforge("detect", output="json"))["decisions"]
                   if d["recipe"] == name]
    assert (decision["action"], decision["reason"]) == ("skip", "revoked"), decision
    assert f"amiforge release {bad['build_id']}" in decision["detail"]
    (planned,) = as_json(amiforge("plan", str(recipe_dir(name, "echo v2\n", extra=KEEP_ONE)),
                                  output="json"))["decisions"]
    assert (planned["action"], planned["reason"]) == ("skip", "revoked")
    (asked,) = as_json(amiforge("build", name, output="json"))["builds"]
    assert (asked["started"], asked["outcome"]) == (False, "revoked"), asked
    assert set(history(amiforge, name)) == {good["build_id"], bad["build_id"]}

    # Release undoes it: every reader is back on the released image.
    released = as_json(amiforge("release", bad["build_id"], "--reason", "false alarm",
                                output="json"))
    assert (released["status"], released["latest"]) == ("AVAILABLE", True), released
    assert released["latest_build_id"] == bad["build_id"]
    assert parameter(aws, name) == bad["image_id"]
    assert amiforge("latest", name).stdout.strip() == bad["image_id"]
    again = history(amiforge, name)[bad["build_id"]]
    assert (again["status"], again["reason"], again["rolled_back_to"]) == (
        "AVAILABLE", None, None)
    assert [(e["event"], e["reason"]) for e in again["rollbacks"]] == [
        ("revoked", "v2 breaks TLS"), ("released", "false alarm")]
    refused(amiforge("release", bad["build_id"]), bad["build_id"], "AVAILABLE, not REVOKED")

    # Rolled back again, then a fixed version is built and becomes latest: with keep: 1,
    # prune keeps the rollback target (and never touches the REVOKED build).
    as_json(amiforge("rollback", name, output="json"))
    fixed = built(amiforge, stack, recipe_dir(name, "echo v3\n", extra=KEEP_ONE), name)
    assert parameter(aws, name) == fixed["image_id"]
    pruned = as_json(amiforge("prune", name, output="json"))
    fates = {d["build_id"]: (d["action"], d["reason"], d["outcome"])
             for d in pruned["decisions"]}
    assert fates == {
        fixed["build_id"]: ("keep", "newest available image", "kept"),
        good["build_id"]: ("keep", f"rollback target of REVOKED build(s) {bad['build_id']}",
                           "kept")}
    ec2 = aws.client("ec2")
    for build in (good, bad, fixed):
        assert [i["ImageId"] for i in images_of_build(ec2, build["build_id"])] == [
            build["image_id"]]

    # A revert to the revoked content does not build it again either.
    reverted = as_json(amiforge("publish", str(recipe_dir(name, "echo v2\n", extra=KEEP_ONE)),
                                output="json"))
    assert [r["build_started"] for r in reverted["recipes"]] == [None], reverted
    assert set(history(amiforge, name)) == {good["build_id"], bad["build_id"],
                                            fixed["build_id"]}
    (decision,) = [d for d in as_json(amiforge("detect", output="json"))["decisions"]
                   if d["recipe"] == name]
    assert (decision["action"], decision["reason"]) == ("skip", "revoked"), decision
    assert decision["detail"].startswith(f"build {bad['build_id']} was revoked: rolled back by")
    assert amiforge("latest", name).stdout.strip() == fixed["image_id"]


def test_rollback_to_an_older_build_revokes_every_build_above_it_and_refusals_exit_2(
        amiforge: Any, aws: Any, stack: Any, recipe_dir: Any) -> None:
    name = unique("rollback-to")
    refused(amiforge("rollback", unique("nope")), "'nope-", "not published")
    first = built(amiforge, stack, recipe_dir(name, "echo v1\n"), name)
    refused(amiforge("rollback", name), f"recipe '{name}' has no previous AVAILABLE image",
            first["build_id"])
    second = built(amiforge, stack, recipe_dir(name, "echo v2\n"), name)
    third = built(amiforge, stack, recipe_dir(name, "echo v3\n"), name)

    refused(amiforge("rollback", name, "--to", f"{name}-0123456789abcdef0123"),
            f"'{name}-0123456789abcdef0123' is not a build of recipe '{name}'")
    refused(amiforge("rollback", name, "--to", third["build_id"]), "already `latest`")
    refused(amiforge("release", first["build_id"]), "AVAILABLE, not REVOKED")
    refused(amiforge("release", "no-such-build"), "'no-such-build' is not a build")
    refused(amiforge("rollback", name, "--reason", "x" * 1025), "--reason", "1025 characters")

    # The previous image is gone (deregistered by hand): refused, nothing changed.
    aws.client("ec2").deregister_image(ImageId=second["image_id"])
    refused(amiforge("rollback", name), second["image_id"], "no longer exists", "--to")
    assert stack.catalog.get(name, third["build_id"])["status"] == "AVAILABLE"
    assert parameter(aws, name) == third["image_id"]

    done = as_json(amiforge("rollback", name, "--to", first["build_id"], output="json"))
    assert [r["build_id"] for r in done["revoked"]] == [third["build_id"], second["build_id"]]
    assert parameter(aws, name) == first["image_id"]
    assert amiforge("latest", name).stdout.strip() == first["image_id"]
    statuses = {b: r["status"] for b, r in history(amiforge, name).items()}
    assert statuses == {first["build_id"]: "AVAILABLE", second["build_id"]: "REVOKED",
                        third["build_id"]: "REVOKED"}
    refused(amiforge("rollback", name, "--to", third["build_id"]), "REVOKED, not AVAILABLE",
            f"`amiforge release {third['build_id']}`")
    refused(amiforge("rollback", name), "no previous AVAILABLE image")

    # The second build's image is gone: releasing it is refused; the third comes back.
    refused(amiforge("release", second["build_id"]), "no longer exists")
    back = as_json(amiforge("release", third["build_id"], output="json"))
    assert back["latest"] is True and parameter(aws, name) == third["image_id"]


def test_a_failed_parameter_write_undoes_the_rollback(
        amiforge: Any, aws: Any, stack: Any, recipe_dir: Any, local_cloud: Any) -> None:
    """The image is copied to eu-west-1; that region refuses every call while the
    rollback moves `latest`: the home parameter, already moved, is put back and the build
    is AVAILABLE again (exit 1 naming the failure). Once the region answers, it works."""
    name = unique("rollback-undo")
    copies = "  regions: [eu-west-1]\n"
    first = built(amiforge, stack, recipe_dir(name, "echo v1\n", extra=copies), name)
    second = built(amiforge, stack, recipe_dir(name, "echo v2\n", extra=copies), name)
    home = aws.resolved_region
    assert parameter(aws, name, "eu-west-1") == second["images"]["eu-west-1"]

    before = local_cloud.faults.configure(disabled_regions=["eu-west-1"])
    try:
        failed = amiforge("rollback", name, "--reason", "bad")
    finally:
        local_cloud.faults.configure(disabled_regions=before["disabled_regions"])
    assert failed.exit_code == 1, (failed.output, failed.stderr)
    (line,) = failed.stderr.splitlines()
    assert "was undone" in line and second["image_id"] in line, line
    record = stack.catalog.get(name, second["build_id"])
    assert record["status"] == "AVAILABLE" and record.get("available_recipe") == name
    assert [e["event"] for e in record["rollbacks"]] == ["revoked", "rollback_undone"]
    assert [e["event"] for e in stack.catalog.get(name, first["build_id"])["rollbacks"]] == [
        "rollback_target", "rollback_undone"]
    assert parameter(aws, name, home) == second["image_id"]
    assert parameter(aws, name, "eu-west-1") == second["images"]["eu-west-1"]
    assert amiforge("latest", name).stdout.strip() == second["image_id"]

    done = as_json(amiforge("rollback", name, "--reason", "bad", output="json"))
    assert sorted(p["region"] for p in done["parameters"]) == sorted([home, "eu-west-1"])
    assert parameter(aws, name, home) == first["image_id"]
    assert parameter(aws, name, "eu-west-1") == first["images"]["eu-west-1"]
