"""Benchmark: the newest-image lookup with 10 vs 10,000 catalog records for a recipe.

Prints one JSON object. On the local cloud, with the stack deployed and one catalog
holding a recipe with 10 records and one with 10,000 (nine in ten AVAILABLE, as a long
history would be), measured side by side in one run, interleaved, median of N:

* ``latest``: :func:`amiforge.steps.latest.latest_image`, what ``amiforge latest`` runs
  (one DynamoDB Query on the sparse index, ``Limit=1``);
* ``responder``: the deployed Custom::LatestAmi function invoked with a CloudFormation
  ``Create`` request whose ResponseURL is the local cloud's (the answer goes to a small
  stack made for the purpose, as CloudFormation would receive it).

The target is a ratio (10,000 / 10) within 1.5x: the lookup must not grow with history.
``dynamodb_calls_per_lookup`` and ``items_returned`` show why it does not on AWS, where a
Query with ``Limit=1`` reads one item. The local cloud's DynamoDB (moto, in this process)
evaluates that Query by walking the whole table and sorting every match of the key, so
its own time grows with the records; it is measured separately (``emulator_query_ms``,
moto's ``Table.query`` on the catalog) and the remainder (``outside_emulator_ms``: amiforge's
code, HTTP, the Lambda runtime) gets its own ratio.

    python bench/lookup.py [N]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from amiforge.aws.catalog import AVAILABLE, FAILED  # noqa: E402
from amiforge.aws.session import AwsContext  # noqa: E402
from amiforge.deploy import stack as stack_api  # noqa: E402
from amiforge.localcloud.server import LocalCloud  # noqa: E402
from amiforge.ops.connect import connect  # noqa: E402
from amiforge.ops.demo import LOCAL_STACK_PARAMETERS  # noqa: E402
from amiforge.steps.env import StepEnv  # noqa: E402
from amiforge.steps.latest import latest_image  # noqa: E402

STACK = "amiforge-bench"
SIZES = {"small": 10, "large": 10_000}
TARGET_RATIO = 1.5


def records(recipe: str, count: int) -> list[dict[str, Any]]:
    """``count`` builds of ``recipe``, oldest first; every tenth FAILED, the rest AVAILABLE."""
    made = []
    for i in range(count):
        build_id = f"{recipe}-{i:08d}"
        created = f"2025-01-01T00:00:00.{i:06d}Z"  # sortable, newest last
        record: dict[str, Any] = {"recipe": recipe, "build_id": build_id, "created_at": created,
                                  "status": AVAILABLE, "build_key": build_id}
        if i % 10 == 9 and i != count - 1:
            record.update(status=FAILED, reason="build script failed (exit 1)")
        else:
            image = f"ami-{i:017x}"
            record.update(available_recipe=recipe, image_id=image, image_name=build_id,
                          images={"us-east-1": image})
        made.append(record)
    return made


def consumer_template(recipe: str) -> str:
    return json.dumps({"Resources": {"Latest": {"Type": "Custom::LatestAmi", "Properties": {
        "ServiceToken": {"Fn::ImportValue": f"{STACK}-LatestAmiServiceToken"},
        "Recipe": recipe}}}})


def settle(cfn: Any, name: str) -> dict:
    for _ in range(600):
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("IN_PROGRESS"):
            return stack
        time.sleep(0.1)
    raise TimeoutError(f"stack {name} did not settle")


class EmulatorClock:
    """Milliseconds spent inside moto's ``Table.query`` on one table (it runs in-process)."""

    def __init__(self, table: str) -> None:
        from moto.dynamodb.models.table import Table

        self.total = 0.0
        original = Table.query
        clock = self

        def query(self: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                if self.name == table:
                    clock.total += (time.perf_counter() - started) * 1000

        Table.query = query  # type: ignore[method-assign]
        self.undo = lambda: setattr(Table, "query", original)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


def main(runs: int) -> dict[str, Any]:
    with LocalCloud() as cloud:
        os.environ.update(cloud.env())
        aws = AwsContext(region=cloud.region, endpoint_url=cloud.endpoint)
        stack_api.deploy(aws, STACK, LOCAL_STACK_PARAMETERS)
        env: StepEnv = connect(aws, STACK)
        recipes = {size: f"bench-{size}" for size in SIZES}

        seeding, _ = timed(lambda: [env.catalog.put_many(records(recipes[s], n))
                                    for s, n in SIZES.items()])
        expected = {s: f"ami-{n - 1:017x}" for s, n in SIZES.items()}

        # A consumer stack per recipe: the ResponseURL of its Latest resource is where a
        # direct invocation's answer goes (the local cloud accepts answers to new requests).
        cfn, lam = aws.client("cloudformation"), aws.client("lambda")
        stacks = {}
        for size, recipe in recipes.items():
            name = f"bench-consumer-{size}"
            cfn.create_stack(StackName=name, TemplateBody=consumer_template(recipe))
            created = settle(cfn, name)
            assert created["StackStatus"] == "CREATE_COMPLETE", created
            stacks[size] = created["StackId"]
        function = f"{STACK}-latest-ami"

        def steps_lookup(size: str) -> Callable[[], str]:
            return lambda: latest_image(env, recipes[size])["ImageId"]

        def responder(size: str) -> Callable[[], str]:
            def invoke() -> str:
                event = {"RequestType": "Create", "ServiceToken": function,
                         "ResponseURL": (f"{cloud.endpoint}/cloudformation_{cloud.region}/"
                                         f"cfnresponse?stack={stacks[size]}"),
                         "StackId": stacks[size], "RequestId": str(uuid.uuid4()),
                         "LogicalResourceId": "Latest", "ResourceType": "Custom::LatestAmi",
                         "ResourceProperties": {"ServiceToken": function,
                                                "Recipe": recipes[size]}}
                response = lam.invoke(FunctionName=function, Payload=json.dumps(event).encode())
                body = json.loads(response["Payload"].read())
                assert "FunctionError" not in response and body["Status"] == "SUCCESS", body
                return body["PhysicalResourceId"]
            return invoke

        calls: Counter = Counter()
        dynamodb = env.client("dynamodb")
        dynamodb.meta.events.register("before-call.dynamodb.*",
                                      lambda model, **_: calls.update([model.name]))
        returned: list[int] = []
        dynamodb.meta.events.register(
            "after-call.dynamodb.Query",
            lambda parsed, **_: returned.append(len(parsed.get("Items", []))))

        clock = EmulatorClock(env.catalog_table)
        result: dict[str, Any] = {"runs": runs, "records": SIZES, "seed_seconds": 0.0}
        for label, make in (("latest", steps_lookup), ("responder", responder)):
            for size in SIZES:  # warm up: first calls pay cold starts, not lookups
                assert make(size)() == expected[size]
            calls.clear()
            returned.clear()
            times: dict[str, list[float]] = {size: [] for size in SIZES}
            emulated: dict[str, list[float]] = {size: [] for size in SIZES}
            for _ in range(runs):
                for size in SIZES:  # interleaved, so drift hits both sizes alike
                    before = clock.total
                    elapsed, image = timed(make(size))
                    assert image == expected[size], (label, size, image)
                    times[size].append(elapsed)
                    emulated[size].append(clock.total - before)
            medians = {size: round(statistics.median(t), 2) for size, t in times.items()}
            in_emulator = {size: round(statistics.median(t), 2) for size, t in emulated.items()}
            outside = {size: round(statistics.median(a - b for a, b in zip(times[size],
                                                                           emulated[size],
                                                                           strict=True)), 2)
                       for size in SIZES}
            ratio = round(medians["large"] / medians["small"], 2)
            result[label] = {"median_ms": medians,
                             "max_ms": {s: round(max(t), 2) for s, t in times.items()},
                             "ratio": ratio, "within_target": ratio <= TARGET_RATIO,
                             "emulator_query_ms": in_emulator,
                             "outside_emulator_ms": outside,
                             "ratio_outside_emulator": round(outside["large"] / outside["small"],
                                                             2)}
            if label == "latest":
                result[label]["dynamodb_calls_per_lookup"] = {
                    name: count / (runs * len(SIZES)) for name, count in calls.items()}
                result[label]["items_returned"] = sorted(set(returned))
        clock.undo()
        result["seed_seconds"] = round(seeding / 1000, 1)
        result["target_ratio"] = TARGET_RATIO
        result["load_1min"] = round(os.getloadavg()[0], 2)
        return result


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)))
