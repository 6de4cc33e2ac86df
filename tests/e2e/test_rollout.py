"""Issue 21, the rollout, through the real CLI and the deployed stack: a recipe with a
launch template and an Auto Scaling group is rebuilt; the template's default version runs
the new image, the refresh replaced the group's instances, and `fleet` reports no
instance or group behind (before the refresh finished it listed the old instances one
release behind). A refresh made to fail rolls the template and `latest` back, records
why and notifies; `amiforge rollback` points the template back too. `fleet --older-than 30` exits 1 when an instance runs an image older
than that, 0 when none does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.e2e.test_approval import notifications, subscribe
from tests.e2e.test_rollback import as_json, built, parameter, unique

from amiforge.aws import stepfunctions as sfn_api
from amiforge.localcloud.testing import wait_for

pytestmark = pytest.mark.e2e
STACK = "amiforge-e2e"


def rollout(template: str, group: str) -> str:
    return (f"release:\n  launch_templates: [{template}]\n"
            f"  instance_refresh: [{{auto_scaling_group: {group}, "
            "min_healthy_percentage: 50, instance_warmup_seconds: 0}]\n")


def consumer(aws: Any, template: str, group: str, image_id: str, directive: str) -> str:
    """The consumer's launch template and group, tagged for the stack; the template's id."""
    ec2 = aws.client("ec2")
    template_id: str = ec2.create_launch_template(
        LaunchTemplateName=template, LaunchTemplateData={"ImageId": image_id,
                                                         "InstanceType": "t3.micro"},
        TagSpecifications=[{"ResourceType": "launch-template",
                            "Tags": [{"Key": "amiforge:rollout", "Value": STACK}]}],
    )["LaunchTemplate"]["LaunchTemplateId"]
    aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=group, MinSize=2, MaxSize=2, DesiredCapacity=2,
        AvailabilityZones=[f"{aws.region}a"],
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": "$Default"},
        Tags=[{"Key": "amiforge:rollout", "Value": STACK, "PropagateAtLaunch": False},
              {"Key": "amiforge-sim:refresh", "Value": directive,
               "PropagateAtLaunch": False}])
    return template_id


def default_image(aws: Any, template_id: str) -> tuple[int, str]:
    ec2 = aws.client("ec2")
    number = ec2.describe_launch_templates(
        LaunchTemplateIds=[template_id])["LaunchTemplates"][0]["DefaultVersionNumber"]
    data = ec2.describe_launch_template_versions(
        LaunchTemplateId=template_id, Versions=[str(number)])["LaunchTemplateVersions"][0]
    return number, data["LaunchTemplateData"]["ImageId"]


def group_instances(aws: Any, group: str) -> dict[str, str]:
    """Instance id -> image id of the group's instances."""
    found = aws.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]
    ids = [i["InstanceId"] for i in found]
    reservations = aws.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return {i["InstanceId"]: i["ImageId"] for r in reservations for i in r["Instances"]}


def rebuild(amiforge: Any, name: str) -> str:
    started = as_json(amiforge("build", "--rebuild", name, output="json"))
    return str(started["builds"][0]["build_id"])


def rollout_of(stack: Any, name: str, build_id: str, *outcomes: str) -> dict:
    return wait_for(lambda: (r := stack.catalog.get(name, build_id)) and isinstance(
        r.get("rollout"), dict) and r["rollout"].get("outcome") in outcomes and r["rollout"],
        timeout=120, interval=0.5, what=f"the rollout of {build_id} to be {' or '.join(outcomes)}")


def states_after_finish(aws: Any, record: dict) -> list[str]:
    """The states the build's execution entered after its cleanup (Register's own, then
    Finished?; or the Finish state), once it ended."""
    sfn = aws.client("stepfunctions")
    arn = record["execution_arn"]
    wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] != "RUNNING",
             timeout=60, what=f"{arn} to end")
    entered = [e["stateEnteredEventDetails"]["name"]
               for e in sfn_api.history(sfn, arn) if "stateEnteredEventDetails" in e]
    cleaned = max(i for i, state in enumerate(entered) if state in ("Finished?", "Finish"))
    return entered[cleaned + 1:]


def fleet(amiforge: Any, *args: str, code: int = 0) -> list[dict]:
    result = amiforge("fleet", *args, output="json")
    assert result.exit_code == code, result.output
    return list(json.loads(result.stdout)["users"])


def test_a_rebuild_rolls_out_to_the_template_and_refreshes_the_group(
        amiforge: Any, aws: Any, stack: Any, recipe_dir: Any) -> None:
    name = unique("rollout")
    template, group = f"{name}-lt", f"{name}-asg"
    directory = recipe_dir(name, extra=rollout(template, group))
    first = built(amiforge, stack, directory, name)
    old = first["image_id"]
    template_id = consumer(aws, template, group, old, "slow 4")
    before = group_instances(aws, group)
    assert set(before.values()) == {old}

    build_id = rebuild(amiforge, name)
    # The template moves first; the refresh has not replaced anything yet.
    new = wait_for(lambda: (d := default_image(aws, template_id))[0] == 2 and d[1],
                   timeout=120, what="the template's new default version")
    assert new != old and group_instances(aws, group) == before
    users = fleet(amiforge, "--stale-only", name)
    behind = {u["id"]: u["releases_behind"] for u in users if u["kind"] == "instance"}
    assert behind == dict.fromkeys(before, 1)

    done = rollout_of(stack, name, build_id, "succeeded", "rolled_back")
    assert done["outcome"] == "succeeded", done
    assert [(t["template_id"], t["previous_version"], t["version"])
            for t in done["templates"]] == [(template_id, 1, 2)]
    assert [r["status"] for r in done["refreshes"]] == ["Successful"]
    # Followed by event, not polled: after Finish, the same six states whatever the
    # refresh's length (its two steps took 4 s each here).
    assert states_after_finish(aws, stack.catalog.get(name, build_id)) == [
        "RollsOut?", "RollOut", "Refreshed?", "AwaitRefresh", "Refreshed?", "Built"]
    assert default_image(aws, template_id) == (2, new)
    after = group_instances(aws, group)
    assert set(after.values()) == {new} and not set(after) & set(before)
    # Nothing that runs or launches from the group is behind any more: fleet reports
    # nothing stale. The superseded version 1 is a standby (neither $Default nor
    # $Latest): fleet leaves it out, retention still keeps its image (a rollback's target).
    assert fleet(amiforge, "--stale-only", name) == []
    assert any(u["id"] == f"{template_id}:2" and u["releases_behind"] == 0
               for u in fleet(amiforge, name))
    history = as_json(amiforge("history", name, output="json"))["builds"][0]
    assert history["rollout"]["outcome"] == "succeeded"
    assert f"launch template {template_id} (us-east-1): version 1 -> 2" in \
        amiforge("history", name).stdout

    # `amiforge rollback` takes the release back, the template included.
    back = as_json(amiforge("rollback", name, "--reason", "bad", output="json"))
    assert back["build_id"] == first["build_id"]
    assert back["launch_templates"] == [{"template_id": template_id, "region": "us-east-1",
                                         "version": 1, "reverted": True,
                                         "reason": "default version put back"}]
    assert default_image(aws, template_id) == (1, old)


def test_a_failed_refresh_rolls_the_release_back_records_why_and_notifies(
        amiforge: Any, aws: Any, stack: Any, recipe_dir: Any) -> None:
    name = unique("rollout-fail")
    template, group = f"{name}-lt", f"{name}-asg"
    directory = recipe_dir(name, extra=rollout(template, group))
    first = built(amiforge, stack, directory, name)
    old = first["image_id"]
    template_id = consumer(aws, template, group, old, "fail")
    queue = subscribe(stack, f"rollout-{name}")

    build_id = rebuild(amiforge, name)
    done = rollout_of(stack, name, build_id, "rolled_back", "succeeded")

    assert done["outcome"] == "rolled_back", done
    assert "ended RollbackSuccessful: the new instances failed their health checks" in \
        done["reason"]
    record = wait_for(lambda: (r := stack.catalog.get(name, build_id))
                      and r["status"] == "REVOKED" and r, timeout=60, what="REVOKED")
    assert record["reason"] == f"rollout failed: {done['reason']}"
    assert record["rolled_back_to"] == first["build_id"]
    assert default_image(aws, template_id) == (1, old)
    assert parameter(aws, name) == old
    assert as_json(amiforge("latest", name, output="json"))["image_id"] == old
    assert set(group_instances(aws, group).values()) == {old}
    (told,) = notifications(stack, queue, build_id, "ROLLED_BACK")
    assert told["reason"] == done["reason"] and told["revoked"] is True
    execution = stack.client("stepfunctions").describe_execution(
        executionArn=record["execution_arn"])
    assert execution["status"] == "FAILED" and execution.get("error") == "RolloutFailed"


def test_fleet_older_than_30_gates_on_an_instance_running_an_older_image(
        amiforge: Any, aws: Any, stack: Any, recipe_dir: Any) -> None:
    name = unique("older")
    first = built(amiforge, stack, recipe_dir(name), name)
    ec2 = aws.client("ec2")
    instance = ec2.run_instances(ImageId=first["image_id"], MinCount=1, MaxCount=1,
                                 InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    fleet(amiforge, "--older-than", "30", name)  # a new image: exit 0
    newer = built(amiforge, stack, recipe_dir(name, "echo v2\n"), name)
    assert parameter(aws, name) == newer["image_id"]
    # The first image was pruned 40 days after it was built (retention's end state: the
    # record PRUNED, the image gone); the instance launched from it still runs it.
    forty = (datetime.now(UTC) - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    stack.catalog.update(name, first["build_id"], created_at=forty, status="PRUNED",
                         remove=("available_recipe",))
    ec2.deregister_image(ImageId=first["image_id"])
    gated = amiforge("fleet", "--older-than", "30", name)
    assert gated.exit_code == 1, gated.output
    assert f"older than 30 day(s): {first['image_id']}" in gated.stdout
    ec2.terminate_instances(InstanceIds=[instance])
    wait_for(lambda: amiforge("fleet", "--older-than", "30", name).exit_code == 0,
             timeout=30, what="no instance running the old image")
