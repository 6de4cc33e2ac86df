"""Helpers shared by test modules: unique names, the stack's tables, recipes, build ids.

Plain functions (no pytest import), so any tier can use them; the fixtures built on them
live in the conftest.py of the tier that needs them (``tests/functional/steps/``).
"""

from __future__ import annotations

import contextlib
import json
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from amiforge.aws import ec2 as ec2_api
from amiforge.aws import ssm as ssm_api
from amiforge.core.model import Recipe
from amiforge.core.recipes import load_recipes
from amiforge.core.tags import BUILD_ID, BUILDER, RECIPE, ROLE
from amiforge.localcloud.testing import wait_for
from amiforge.steps.env import StepEnv
from amiforge.steps.launch import launch
from amiforge.steps.resolve import resolve

HOME, COPY = "us-east-1", "eu-west-1"
AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64"


def with_ctrl_c(argv: list[str]) -> list[str]:
    """``argv``, started so that Ctrl-C (SIGINT) and SIGQUIT reach it as in a terminal.

    A process a non-interactive shell starts in the background (``make test &``, some CI
    runners) inherits both signals ignored, and so does everything it starts: a test that
    plays a user pressing Ctrl-C would then wait on a process that cannot hear it. This
    gives both signals back their default action and execs ``argv``."""
    restore = ("import os, signal, sys\n"
               "for number in (signal.SIGINT, signal.SIGQUIT):\n"
               "    signal.signal(number, signal.SIG_DFL)\n"
               "os.execvp(sys.argv[1], sys.argv[1:])")
    return [sys.executable, "-c", restore, *argv]


def unique(prefix: str) -> str:
    """``prefix`` and 8 random hex digits: the local cloud is shared by a worker's tests."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def build_id_of(recipe: str) -> str:
    """A build id of the exact format (``<recipe>-`` and 20 hex digits): the deletion gate
    and the cleanup messages refuse any other."""
    return f"{recipe}-{uuid.uuid4().hex[:20]}"


def iso(days_ago: float = 0) -> str:
    """A catalog timestamp (``created_at``) ``days_ago`` days before now."""
    when = datetime.now(UTC) - timedelta(days=days_ago)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def create_tables(ddb: Any, suffix: str | None = None) -> tuple[str, str]:
    """The catalog and recipe-store tables, keyed and indexed as deploy/template.yaml
    declares them; (catalog, recipes) table names."""
    suffix = suffix or uuid.uuid4().hex[:8]
    catalog, recipes = f"catalog-{suffix}", f"recipes-{suffix}"
    ddb.create_table(
        TableName=catalog, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in
                              ("recipe", "build_id", "available_recipe", "created_at")],
        KeySchema=[{"AttributeName": "recipe", "KeyType": "HASH"},
                   {"AttributeName": "build_id", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{
            "IndexName": "available", "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": "available_recipe", "KeyType": "HASH"},
                          {"AttributeName": "created_at", "KeyType": "RANGE"}]}])
    ddb.create_table(
        TableName=recipes, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                              for n in ("name", "version")],
        KeySchema=[{"AttributeName": "name", "KeyType": "HASH"},
                   {"AttributeName": "version", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{
            "IndexName": "current", "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": "version", "KeyType": "HASH"},
                          {"AttributeName": "name", "KeyType": "RANGE"}]}])
    return catalog, recipes


def stack_resources(aws: Any) -> StepEnv:
    """What a deployed stack gives its functions, in ``aws``'s region, made of only what
    the steps need: the two tables, a builder security group, the cleanup queue and its
    dead-letter queue, a topic and a stack name. A recipe minute is one second here."""
    catalog, recipes = create_tables(aws.client("dynamodb"))
    name = unique("stack")
    sqs = aws.client("sqs")
    group = aws.client("ec2").create_security_group(
        GroupName=f"{name}-builders", Description="amiforge builders: no inbound")["GroupId"]
    return StepEnv(
        catalog_table=catalog, recipes_table=recipes, stack_name=name,
        topic_arn=aws.client("sns").create_topic(Name=name)["TopicArn"],
        cleanup_queue_url=sqs.create_queue(QueueName=f"{name}-cleanup")["QueueUrl"],
        cleanup_dead_letter_url=sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"],
        builder_security_group_id=group, seconds_per_minute=1, poll_seconds=1,
        image_timeout_minutes=5, aws=aws)


def write_recipe(directory: Path, name: str, script: str = "echo hello\n", *,
                 base: str = f"{{ssm_parameter: {AL2023}}}", build: str = "",
                 image: str = "", extra: str = "") -> Recipe:
    """Write recipe ``name`` (a Linux user-data build running ``script``) into its own
    directory under ``directory`` and load it. ``build``/``image``: more YAML lines
    (indented two spaces) for those sections; ``extra``: more top-level YAML."""
    here = directory / name
    (here / "scripts").mkdir(parents=True, exist_ok=True)
    (here / "scripts" / f"{name}.sh").write_text("#!/bin/bash\n" + script)
    image_section = f"image:\n{textwrap.indent(textwrap.dedent(image), '  ')}" if image else ""
    (here / f"{name}.yaml").write_text(
        f"name: {name}\ndescription: test recipe {name}\nbase: {base}\n"
        f"build:\n  platform: linux\n  user_data: scripts/{name}.sh\n"
        f"  instance_types: [t3.small]\n"
        f"{textwrap.indent(textwrap.dedent(build), '  ')}"
        f"{image_section}{textwrap.dedent(extra)}")
    (recipe,) = load_recipes(here)
    return recipe


# -- running the steps before the one under test ---------------------------------------

Publish = Callable[..., Recipe]


def publish_recipe(env: StepEnv, recipe: Recipe) -> None:
    env.store.publish(recipe.name, recipe.hash, recipe.to_document(), None)


def resolved(env: StepEnv, recipe: Recipe, **input_: Any) -> dict[str, Any]:
    """The execution state after Resolve: {build, timing}."""
    build_id = build_id_of(recipe.name)
    return resolve({"input": {"recipe": recipe.name, "trigger": "manual", **input_},
                    "build_id": build_id,
                    "execution_arn": f"arn:aws:states:{HOME}:123456789012:execution:"
                                     f"machine:{build_id}"}, env)


def launched(env: StepEnv, recipe: Recipe, **input_: Any) -> dict[str, Any]:
    """The execution state after Resolve and Launch: {build, timing, launch}."""
    state = resolved(env, recipe, **input_)
    return {**state, "launch": launch(state, env)}


def instance_state(env: StepEnv, instance_id: str, region: str | None = None) -> str:
    reservations = env.client("ec2", region).describe_instances(
        InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]["State"]["Name"]


def wait_state(env: StepEnv, instance_id: str, *states: str) -> str:
    """Wait until the builder simulator moved the instance into one of ``states``."""
    return wait_for(lambda: (s if (s := instance_state(env, instance_id)) in states else None),
                    timeout=20, what=f"{instance_id} to be {' or '.join(states)}")


def stopped(env: StepEnv, recipe: Recipe, **input_: Any) -> dict[str, Any]:
    """The state after Launch, once the builder stopped by itself (script done)."""
    state = launched(env, recipe, **input_)
    wait_state(env, state["launch"]["instance_id"], "stopped", "terminated")
    return state


def image_exists(env: StepEnv, image_id: str, region: str | None = None) -> bool:
    described = ec2_api.describe_image(env.client("ec2", region), image_id)
    return described is not None and described.get("State") != "deregistered"


def latest_value(env: StepEnv, recipe: str, region: str | None = None) -> str | None:
    return ssm_api.get_value(env.client("ssm", region), ssm_api.latest_parameter_name(recipe))


_imaged_at: dict[str, int] = {}


def _next_second_for(recipe: str) -> None:
    """Wait out the wall-clock second of this recipe's previous image. The default name
    ``{recipe}-{date}-{short_hash}`` has one-second resolution, so two images of one recipe
    in one second share a name and CreateImage refuses the second (as it should; that
    refusal has tests of its own). Tests that make images back to back want two images."""
    while int(time.time()) == _imaged_at.get(recipe):
        time.sleep(0.05)


def imaged(env: StepEnv, recipe: Recipe, **input_: Any) -> dict[str, Any]:
    """The state after a good build's Verify, CreateImage and AwaitImage: {..., image}."""
    from amiforge.steps.image import create_image
    from amiforge.steps.image_wait import image_output
    from amiforge.steps.verify import verify

    state = stopped(env, recipe, **input_)
    state["verdict"] = verify(state, env)
    _next_second_for(recipe.name)
    state["image"] = create_image(state, env)
    _imaged_at[recipe.name] = int(time.time())  # at or after the second in the name
    # What AwaitImage answers once the image is available (at once in the local cloud
    # by default; steps/image_wait.py's tests wait for it by event).
    described = ec2_api.describe_image(env.client("ec2"), state["image"]["image_id"])
    assert described is not None and described["State"] == "available", described
    state["image"] = image_output(state["image"], described)
    return state


def seed(env: StepEnv, *records: dict[str, Any]) -> None:
    """Write catalog records as they are (``created_at`` defaults to now; an AVAILABLE
    one joins the ``available`` index as Register's write does)."""
    env.catalog.put_many([
        {"created_at": iso(), **({"available_recipe": r["recipe"]}
                                 if r.get("status") == "AVAILABLE" else {}), **r}
        for r in records])


def dead_letters(env: StepEnv) -> list[tuple[str, str]]:
    """(body, reason) of every message on the cleanup dead-letter queue, received and
    deleted."""
    sqs, url = env.client("sqs"), env.cleanup_dead_letter_url
    out = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                  MessageAttributeNames=["All"]).get("Messages", [])
        if not got:
            return sorted(out)
        for message in got:
            out.append((message["Body"], message["MessageAttributes"]["reason"]["StringValue"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


class TaskTokens:
    """A state machine whose one task waits for its token (as AwaitStop does), for steps
    that resume executions: each :meth:`wait` starts an execution and returns (its ARN,
    the token Step Functions handed the task), taken from the SQS message the task sent."""

    def __init__(self, aws: Any) -> None:
        self.sfn, self.sqs = aws.client("stepfunctions"), aws.client("sqs")
        name = unique("await-stop")
        self.queue = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        role = aws.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")
        definition = {"StartAt": "AwaitStop", "States": {"AwaitStop": {
            "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": self.queue, "MessageBody": {
                "token.$": "$$.Task.Token", "name.$": "$$.Execution.Name"}},
            "TimeoutSeconds": 600, "End": True}}}
        self.machine = self.sfn.create_state_machine(
            name=name, definition=json.dumps(definition),
            roleArn=role["Role"]["Arn"])["stateMachineArn"]

    def wait(self) -> tuple[str, str]:
        name = unique("exec")
        arn = self.sfn.start_execution(stateMachineArn=self.machine, name=name)["executionArn"]

        def token() -> str | None:
            for message in self.sqs.receive_message(QueueUrl=self.queue,
                                                    MaxNumberOfMessages=10,
                                                    WaitTimeSeconds=1).get("Messages", []):
                body = json.loads(message["Body"])
                self.sqs.delete_message(QueueUrl=self.queue,
                                        ReceiptHandle=message["ReceiptHandle"])
                if body["name"] == name:
                    return str(body["token"])
            return None
        return arn, wait_for(token, timeout=20, what=f"the task token of {name}")

    def outcome(self, arn: str) -> tuple[str, Any]:
        """(status, parsed output) once the execution ended."""
        described = wait_for(lambda: (d if (d := self.sfn.describe_execution(
            executionArn=arn))["status"] != "RUNNING" else None),
            timeout=20, what=f"{arn} to end")
        return described["status"], json.loads(described.get("output") or "null")

    def status(self, arn: str) -> str:
        return str(self.sfn.describe_execution(executionArn=arn)["status"])

    def close(self) -> None:
        """Stop the executions still waiting (the ones a test left unanswered)."""
        for page in self.sfn.get_paginator("list_executions").paginate(
                stateMachineArn=self.machine, statusFilter="RUNNING"):
            for execution in page["executions"]:
                self.sfn.stop_execution(executionArn=execution["executionArn"])


class CallCounter:
    """Counts a real client's API calls by operation (botocore's before-call event) until
    :meth:`close` (or the end of its ``with`` block)."""

    def __init__(self, client: Any) -> None:
        self.calls: dict[str, int] = {}
        self._events = client.meta.events
        self._id = uuid.uuid4().hex
        self._events.register("before-call.*.*", self._count, unique_id=self._id)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] = self.calls.get(model.name, 0) + 1

    def close(self) -> None:
        self._events.unregister("before-call.*.*", unique_id=self._id)

    def __enter__(self) -> CallCounter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def raw_builder(env: StepEnv, recipe: str, build_id: str, user_data: str = "") -> str:
    """A builder instance as Launch tags it (the simulator plays it), started directly."""
    image = env.client("ssm").get_parameter(Name=AL2023)["Parameter"]["Value"]
    tags = [{"Key": "amiforge:recipe", "Value": recipe},
            {"Key": "amiforge:build-id", "Value": build_id},
            {"Key": "amiforge:role", "Value": "builder"}]
    return str(env.client("ec2").run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.small", UserData=user_data,
        InstanceInitiatedShutdownBehavior="stop",
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}]
    )["Instances"][0]["InstanceId"])


# -- a CloudFormation ResponseURL on loopback ------------------------------------------------

class Collector(BaseHTTPRequestHandler):
    """Records each PUT; answers with the next queued status (200 when none)."""

    server: Any

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.answers.append({"path": self.path, "headers": dict(self.headers),
                                    "raw": body, "body": json.loads(body)})
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@contextlib.contextmanager
def response_server() -> Iterator[Any]:
    """A ResponseURL (``.url``) that records each PUT in ``.answers`` and answers with the
    statuses queued in ``.statuses`` (200 when none), as CloudFormation's pre-signed S3
    URL would receive a custom resource's answer."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    server.answers = []  # type: ignore[attr-defined]
    server.statuses = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/cfnresponse?stack=s1"  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def tagged_image(env: StepEnv, recipe: str, build_id: str, region: str | None = None,
                 stack: str | None = None) -> tuple[str, list[str]]:
    """An image of the build (image and snapshots tagged as CreateImage tags them, the
    stack tag too when given); (image id, its snapshot ids)."""
    ec2 = env.client("ec2", region)
    image_id = ec2.register_image(Name=f"img-{build_id}-{uuid.uuid4().hex[:6]}",
                                  RootDeviceName="/dev/xvda")["ImageId"]
    (image,) = ec2.describe_images(ImageIds=[image_id])["Images"]
    snapshots = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"]
                 if m.get("Ebs", {}).get("SnapshotId")]
    tags = [{"Key": "amiforge:recipe", "Value": recipe},
            {"Key": "amiforge:build-id", "Value": build_id}]
    if stack:
        tags.append({"Key": "amiforge:stack", "Value": stack})
    ec2.create_tags(Resources=[image_id, *snapshots], Tags=tags)
    return image_id, snapshots


def snapshot_exists(env: StepEnv, snapshot_id: str, region: str | None = None) -> bool:
    from botocore.exceptions import ClientError

    try:
        return bool(env.client("ec2", region).describe_snapshots(
            SnapshotIds=[snapshot_id])["Snapshots"])
    except ClientError as err:
        if err.response["Error"]["Code"] != "InvalidSnapshot.NotFound":
            raise
        return False


# -- builds as cleanup meets them (Finish, RecordFailure, the cleanup queue) -------------


def gate_names() -> tuple[str, str]:
    recipe = unique("gate")
    return recipe, build_id_of(recipe)


def tagged_builder(env: StepEnv, recipe: str, build_id: str, image: str | None = None) -> str:
    image = image or env.client("ssm").get_parameter(Name=AL2023)["Parameter"]["Value"]
    tags = [{"Key": RECIPE, "Value": recipe}, {"Key": BUILD_ID, "Value": build_id},
            {"Key": ROLE, "Value": BUILDER}]
    return env.client("ec2").run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.small",
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}]
    )["Instances"][0]["InstanceId"]


def build_image(env: StepEnv, recipe: str, build_id: str) -> str:
    """An image of the build as CreateImage makes it (image and snapshots tagged)."""
    instance = tagged_builder(env, recipe, build_id)
    tags = [{"Key": RECIPE, "Value": recipe}, {"Key": BUILD_ID, "Value": build_id}]
    return env.client("ec2").create_image(
        InstanceId=instance, Name=f"img-{build_id}", NoReboot=True,
        TagSpecifications=[{"ResourceType": "image", "Tags": tags},
                           {"ResourceType": "snapshot", "Tags": tags}])["ImageId"]


def image_listed(env: StepEnv, image_id: str) -> bool:
    try:
        return bool(env.client("ec2").describe_images(ImageIds=[image_id])["Images"])
    except ClientError as err:
        assert err.response["Error"]["Code"] == "InvalidAMIID.NotFound"
        return False


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {"Records": [{"messageId": f"m{n}", "body": body,
                         "attributes": {"ApproximateReceiveCount": "1"}}
                        for n, body in enumerate(bodies)]}


def queued(env: StepEnv) -> list[dict[str, Any]]:
    got = env.client("sqs").receive_message(QueueUrl=env.cleanup_queue_url,
                                            MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in got]
