"""The build-instance simulator: each directive's lifecycle, events and console marker."""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from typing import Any

import boto3
import pytest

from amiforge.core.userdata import parse_console, wrap
from amiforge.localcloud.testing import receive_all, wait_for

LINUX_IMAGE = "ami-0fcb5f3b2f4b5c6d7"  # not preloaded: moto launches any id
LINUX_OK = "#!/bin/bash\nset -euo pipefail\ndnf -y install nginx\n"
CASES = {
    # name: (user data, InstanceInitiatedShutdownBehavior, final state, marker)
    "success": (LINUX_OK, "stop", "stopped", "AMIFORGE-RESULT: success"),
    "fail": ("#!/bin/bash\n# amiforge-sim: fail\nfalse\n", "stop", "stopped",
             "AMIFORGE-RESULT: failure exit=1"),
    "syntax": ("#!/bin/bash\nif true; then\n  echo unbalanced\n", "stop", "stopped",
               "AMIFORGE-RESULT: failure exit=2"),
    "windows": ("<powershell>\nif ($true) { Write-Host 'not bash' \n</powershell>\n", "stop",
                "stopped", "AMIFORGE-RESULT: success"),
    "terminate": (LINUX_OK, "terminate", "terminated", "AMIFORGE-RESULT: success"),
    # amiforge's wrapper keeps the recipe's script in a quoted heredoc: the simulator
    # must check the script itself, as bash on the instance would when running it.
    "wrapped-syntax": (wrap("linux", "#!/bin/bash\nif true; then\n", recipe_name="web",
                            recipe_hash="0123abcd"), "stop", "stopped",
                       "AMIFORGE-RESULT: failure exit=2"),
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ec2(local_cloud: Any) -> Any:
    return boto3.client("ec2")


@pytest.fixture
def state_events(local_cloud: Any) -> tuple[Any, str]:
    """An SQS queue receiving every EC2 state-change event (rule on the default bus)."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName=unique("ec2-events"))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    rule = unique("ec2-state")
    events.put_rule(Name=rule, EventPattern=json.dumps({
        "source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn}])
    yield sqs, url
    events.remove_targets(Rule=rule, Ids=["q"])
    events.delete_rule(Name=rule)


def launch(ec2: Any, user_data: str | bytes, *, recipe: str, behaviour: str = "stop",
           builder: bool = True, build_id: str | None = None) -> str:
    tags = [{"Key": "amiforge:recipe", "Value": recipe}]
    if build_id:
        tags.append({"Key": "amiforge:build-id", "Value": build_id})
    if builder:
        tags.append({"Key": "amiforge:role", "Value": "builder"})
    response = ec2.run_instances(
        ImageId=LINUX_IMAGE, MinCount=1, MaxCount=1, InstanceType="t3.small",
        UserData=user_data, InstanceInitiatedShutdownBehavior=behaviour,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
    instance = response["Instances"][0]
    assert instance["State"]["Name"] == "pending"
    return instance["InstanceId"]


def state_of(ec2: Any, instance_id: str) -> str:
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def console(ec2: Any, instance_id: str) -> str:
    # The wire carries base64 (as AWS); botocore decodes it for GetConsoleOutput.
    return ec2.get_console_output(InstanceId=instance_id).get("Output", "")


def states_by_instance(bodies: list[dict]) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for body in bodies:
        seen.setdefault(body["detail"]["instance-id"], []).append(body["detail"]["state"])
    return seen


def wait_final(ec2: Any, ids: dict[str, str], finals: dict[str, str]) -> None:
    wait_for(lambda: all(state_of(ec2, ids[c]) == finals[c] for c in ids), timeout=15,
             interval=0.1, what=f"instances to reach {finals}")


def test_each_directive_plays_its_lifecycle(ec2: Any, state_events: tuple[Any, str],
                                            local_cloud: Any) -> None:
    sqs, url = state_events
    ids = {case: launch(ec2, data, recipe=unique(case), behaviour=behaviour)
           for case, (data, behaviour, _, _) in CASES.items()}
    hang = launch(ec2, "#!/bin/bash\n# amiforge-sim: hang\nsleep infinity\n",
                  recipe=unique("hang"))
    # boto3 base64-encodes UserData itself: encoding it first sends base64 text, which
    # cloud-init ignores (not a script), so the builder runs nothing and never stops.
    twice = launch(ec2, base64.b64encode(LINUX_OK.encode()).decode(), recipe=unique("b64"))

    wait_for(lambda: state_of(ec2, hang) == state_of(ec2, twice) == "running", timeout=5,
             what="hang and twice-encoded to run")
    wait_final(ec2, ids, {case: spec[2] for case, spec in CASES.items()})
    # each case: 4 events; hang and twice-encoded: 2 each so far
    bodies = receive_all(sqs, url, 4 * len(CASES) + 4)
    seen = states_by_instance(bodies)

    for case, (_, _, final, marker) in CASES.items():
        lifecycle = (["pending", "running", "stopping", "stopped"] if final == "stopped"
                     else ["pending", "running", "shutting-down", "terminated"])
        assert seen[ids[case]] == lifecycle, case
        text = console(ec2, ids[case])
        assert marker + "\n" in text, (case, text)
        verdict = parse_console(text)  # what the pipeline's verify step will read
        assert verdict.outcome == ("success" if marker.endswith("success") else "failure")
    assert seen[hang] == ["pending", "running"]
    assert state_of(ec2, hang) == "running"
    assert "AMIFORGE-RESULT" not in console(ec2, hang)
    assert seen[twice] == ["pending", "running"]
    assert "Unhandled non-multipart (text/x-not-multipart) userdata" in console(ec2, twice)
    syntax = console(ec2, ids["syntax"])
    assert "/var/lib/cloud/instance/scripts/part-001: line" in syntax
    assert "syntax error" in syntax
    assert "EC2Launch" in console(ec2, ids["windows"])
    assert "/var/lib/amiforge/build-script: line 3: syntax error" in console(
        ec2, ids["wrapped-syntax"])
    event = next(b for b in bodies if b["detail"]["instance-id"] == ids["success"])
    assert event["source"] == "aws.ec2"
    assert event["resources"] == [
        f"arn:aws:ec2:us-east-1:123456789012:instance/{ids['success']}"]
    reason = ec2.describe_instances(InstanceIds=[ids["success"]])["Reservations"][0][
        "Instances"][0]["StateReason"]
    assert reason["Code"] == "Client.InstanceInitiatedShutdown"
    # A stopped builder can be imaged, which is what the pipeline does next.
    image = ec2.create_image(InstanceId=ids["success"], Name=unique("baked"))["ImageId"]
    assert ec2.describe_images(ImageIds=[image])["Images"][0]["State"] == "available"
    ec2.terminate_instances(InstanceIds=[hang, twice])


def test_crash_never_reaches_running(ec2: Any, state_events: tuple[Any, str]) -> None:
    sqs, url = state_events
    crashed = launch(ec2, "#!/bin/bash\n# amiforge-sim: crash\necho never runs\n",
                     recipe=unique("crash"))
    wait_for(lambda: state_of(ec2, crashed) == "terminated", timeout=10, what="the crash")
    bodies: list[dict] = []

    def three_of_crashed() -> bool:
        bodies.extend(receive_all(sqs, url, 1))  # other builders' events may come too
        return len(states_by_instance(bodies).get(crashed, [])) >= 3

    wait_for(three_of_crashed, timeout=15, what="the crashed builder's events")
    assert states_by_instance(bodies)[crashed] == ["pending", "shutting-down", "terminated"]
    described = ec2.describe_instances(InstanceIds=[crashed])["Reservations"][0]["Instances"][0]
    assert described["StateReason"]["Code"] == "Server.InternalError"
    assert parse_console(console(ec2, crashed)).outcome == "missing"


def test_flaky_fails_the_first_launch_of_each_build(ec2: Any) -> None:
    recipe = unique("flaky")
    # gzip-compressed user data, as cloud-init accepts (boto3 adds the base64)
    script = gzip.compress(b"#!/bin/bash\n# amiforge-sim: flaky\necho hi\n")
    launched = []
    for build_id in ("build-1", "build-1", "build-2", "build-2"):
        instance = launch(ec2, script, recipe=recipe, build_id=f"{recipe}-{build_id}")
        wait_for(lambda i=instance: state_of(ec2, i) == "stopped", timeout=10,
                 what=f"launch of {build_id}")
        launched.append(console(ec2, instance))

    # A later build of a recipe built before is flaky again: it fails once, then succeeds.
    assert ["AMIFORGE-RESULT: failure exit=1" in c for c in launched] == [
        True, False, True, False]
    assert "AMIFORGE-RESULT: success" in launched[1] and "AMIFORGE-RESULT: success" in launched[3]


def test_api_stop_and_terminate_emit_events(ec2: Any, state_events: tuple[Any, str]) -> None:
    sqs, url = state_events
    plain = launch(ec2, "#!/bin/bash\n", recipe=unique("plain"), builder=False)
    builder = launch(ec2, "#!/bin/bash\n# amiforge-sim: hang\n", recipe=unique("hung"))
    wait_for(lambda: state_of(ec2, builder) == "running", timeout=5, what="builder to run")

    ec2.stop_instances(InstanceIds=[plain])
    ec2.terminate_instances(InstanceIds=[plain, builder])

    seen = states_by_instance(receive_all(sqs, url, 10))
    assert seen[plain] == ["pending", "running", "stopping", "stopped", "shutting-down",
                           "terminated"]
    assert seen[builder] == ["pending", "running", "shutting-down", "terminated"]
    assert "Linux version" in console(ec2, plain)  # moto's canned text for non-builders
