"""Issue 17: a wait that ends (``--timeout``, Ctrl-C) says the build goes on and how to
follow or cancel it; ``amiforge cancel`` stops a build and leaves nothing behind."""

from __future__ import annotations

import json
from typing import Any

import pytest

from amiforge.aws.waits import WaitingList
from amiforge.core.statuses import MEANINGS
from amiforge.core.tags import BUILD_ID
from amiforge.localcloud.testing import images_of_build, snapshots_of_build, wait_for
from amiforge.ops import builds as builds_ops

pytestmark = pytest.mark.e2e
HANG = "# amiforge-sim: hang\nsleep infinity\n"


def builders(aws: Any, build_id: str) -> list[dict]:
    reservations = aws.client("ec2").describe_instances(
        Filters=[{"Name": f"tag:{BUILD_ID}", "Values": [build_id]}])["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def running_build(stack: Any, recipe: str) -> dict:
    """The recipe's one build, once Resolve has written its record."""
    (record,) = wait_for(lambda: stack.catalog.history(recipe), timeout=60,
                         what=f"the record of {recipe}'s build")
    return record


def one_line(stderr: str) -> str:
    """The one error line, last on stderr (after any progress lines of the wait)."""
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("amiforge: error:")]
    assert errors == lines[-1:], stderr
    assert "Traceback" not in stderr and "Aborted" not in stderr
    return lines[-1]


def test_a_wait_that_times_out_says_the_build_goes_on_and_cancel_removes_it(
        amiforge: Any, aws: Any, recipe_dir: Any, stack: Any) -> None:
    # A 10-hour timeout: the build is still waiting for its builder when the CLI gives up.
    assert amiforge("publish", str(recipe_dir("hangs", HANG, timeout_minutes=600))).exit_code == 0
    waited = amiforge("build", "--wait", "--timeout", "3", "hangs")
    assert waited.exit_code == 1
    record = running_build(stack, "hangs")
    build_id = record["build_id"]
    line = one_line(waited.stderr)
    assert "stopped waiting after 3 s (--timeout); the build goes on" in line
    assert "`amiforge status`" in line and "`amiforge history hangs`" in line
    assert f"`amiforge cancel {build_id}`" in line
    assert stack.catalog.get("hangs", build_id)["status"] == "BUILDING"
    launched = wait_for(lambda: builders(aws, build_id), timeout=60)
    waits = WaitingList(stack.client("dynamodb"), stack.catalog_table)
    wait_for(lambda: [w for w in waits.all() if w.build_id == build_id], timeout=60,
             what="the build waiting for its builder to stop")

    cancelled = amiforge("cancel", "hangs", "--reason", "not needed", output="json")
    assert cancelled.exit_code == 0, cancelled.output
    (done,) = json.loads(cancelled.stdout)["cancelled"]
    assert (done["build_id"], done["status"], done["execution_stopped"]) == (
        build_id, "CANCELLED", True)
    assert set(done["terminated"]) == {i["InstanceId"] for i in launched}
    record = stack.catalog.get("hangs", build_id)
    assert (record["status"], record["reason"]) == ("CANCELLED", "not needed")
    execution = stack.client("stepfunctions").describe_execution(
        executionArn=record["execution_arn"])
    assert execution["status"] == "ABORTED"
    assert all(i["State"]["Name"] == "terminated" for i in builders(aws, build_id))
    assert images_of_build(aws.client("ec2"), build_id) == []
    assert snapshots_of_build(aws.client("ec2"), build_id) == []
    assert [w for w in waits.all() if w.build_id == build_id] == []

    again = amiforge("cancel", build_id)
    assert again.exit_code == 2
    assert f"build {build_id} is already CANCELLED: nothing to cancel" in one_line(again.stderr)
    assert stack.catalog.get("hangs", build_id)["updated_at"] == record["updated_at"]
    (shown,) = json.loads(amiforge("history", "hangs", output="json").stdout)["builds"]
    assert (shown["status"], shown["status_meaning"]) == ("CANCELLED", MEANINGS["CANCELLED"])
    rows = json.loads(amiforge("status", output="json").stdout)["recipes"]
    (row,) = [r for r in rows if r["recipe"] == "hangs"]
    assert (row["last_status"], row["last_status_meaning"]) == (
        "CANCELLED", MEANINGS["CANCELLED"])


def test_ctrl_c_during_a_wait_says_the_build_goes_on(
        amiforge: Any, recipe_dir: Any, stack: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert amiforge("publish", str(recipe_dir("interrupted", HANG,
                                              timeout_minutes=600))).exit_code == 0

    polls: list[str] = []
    real_state = builds_ops.polled_state

    def ctrl_c_on_second_poll(env: Any, arn: str) -> tuple[str, str | None]:
        # Ctrl-C arrives as KeyboardInterrupt wherever the main thread is: here, while
        # it asks Step Functions for the second time.
        polls.append(arn)
        if len(polls) > 1:
            raise KeyboardInterrupt
        return real_state(env, arn)

    monkeypatch.setattr(builds_ops, "polled_state", ctrl_c_on_second_poll)
    waited = amiforge("build", "--wait", "interrupted")
    monkeypatch.undo()
    assert waited.exit_code == 1
    assert len(polls) == 2
    build_id = running_build(stack, "interrupted")["build_id"]
    line = one_line(waited.stderr)
    assert line.startswith(f"amiforge: error: interrupted; the build goes on: {build_id} ")
    assert f"`amiforge cancel {build_id}`" in line
    assert amiforge("cancel", build_id).exit_code == 0
    assert stack.catalog.get("interrupted", build_id)["status"] == "CANCELLED"


def test_a_build_cancelled_right_after_publish_is_cancelled_and_leaves_nothing(
        amiforge: Any, aws: Any, recipe_dir: Any, stack: Any) -> None:
    # The build may not have its record yet (Resolve runs a moment later): it is found by
    # the recipe's claimed execution and cancelled all the same.
    published = amiforge("publish", str(recipe_dir("early", HANG, timeout_minutes=600)),
                         output="json")
    (started,) = json.loads(published.stdout)["recipes"]
    cancelled = amiforge("cancel", "early", output="json")
    assert cancelled.exit_code == 0, cancelled.output
    (done,) = json.loads(cancelled.stdout)["cancelled"]
    assert (done["build_id"], done["status"]) == (started["build_started"], "CANCELLED")
    record = stack.catalog.get("early", done["build_id"])
    assert record["status"] == "CANCELLED"
    execution = stack.client("stepfunctions").describe_execution(
        executionArn=done["execution_arn"])
    assert execution["status"] == "ABORTED"
    # A Launch already in flight when the execution stopped may still start a builder
    # after the cancel's cleanup: the cleanup queue's second look or, last, the sweeper
    # (CANCELLED is over) removes it.
    assert amiforge("sweep").exit_code == 0
    assert all(i["State"]["Name"] in ("shutting-down", "terminated")
               for i in builders(aws, done["build_id"]))
    assert images_of_build(aws.client("ec2"), done["build_id"]) == []
    assert snapshots_of_build(aws.client("ec2"), done["build_id"]) == []


def test_a_finished_build_is_not_cancelled_and_keeps_its_image(
        amiforge: Any, aws: Any, recipe_dir: Any, stack: Any) -> None:
    assert amiforge("publish", str(recipe_dir("finished"))).exit_code == 0
    built = amiforge("build", "--wait", "finished", output="json")
    assert built.exit_code == 0, built.output
    (build,) = json.loads(built.stdout)["builds"]
    for target in (build["build_id"], "finished"):
        refused = amiforge("cancel", target)
        assert refused.exit_code == 2
        assert "AVAILABLE" in one_line(refused.stderr) and "nothing to cancel" in refused.stderr
    assert stack.catalog.get("finished", build["build_id"])["status"] == "AVAILABLE"
    assert [i["ImageId"] for i in images_of_build(aws.client("ec2"), build["build_id"])] == [
        build["image_id"]]


def test_cancel_of_an_unknown_name_is_one_line_exit_2(amiforge: Any) -> None:
    result = amiforge("cancel", "no-such-recipe")
    assert result.exit_code == 2
    assert "'no-such-recipe' is neither a build id nor a published recipe" in one_line(
        result.stderr)
