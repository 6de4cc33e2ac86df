"""Benchmark: one detection over N recipes on K distinct bases, against the naive loop.

Prints one JSON object. For each N (1, 10, 100, 1000) with K = min(N, 10) bases, on the
local cloud:
  * amiforge's detection when nothing changed (steady state: the recipe Query, one
    DescribeImages for the K bases, which differ only in name, and a BatchGetItem of
    the claimed builds per 100 recipes),
  * the same when one base released a new image (N/K builds started),
  * lambda_build_ami's way: one DescribeImages / GetParameter per recipe,
counting every AWS call made (botocore before-call events) and the wall time, all in one
run so the ratios compare like with like. Builds are started on a one-state machine: this
measures detection, not builds.

Then ``per_day``: the measured calls per run times the runs a day of the template's
``DetectSchedule`` default, against each recipe checking its own base once a day and once
an hour (the naive loop's measured DescribeImages per recipe, without its listing), and
the recipe count from which detection makes fewer calls a day (``detect_per_day.py``).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src"),
                str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from detect_per_day import (  # noqa: E402
    DAILY,
    HOURLY,
    calls_per_day,
    crossover,
    per_recipe_calls_per_day,
    runs_per_day,
)
from tests.helpers import create_tables  # noqa: E402

from amiforge.aws.session import AwsContext  # noqa: E402
from amiforge.core.hashing import build_key  # noqa: E402
from amiforge.core.model import Recipe  # noqa: E402
from amiforge.core.parse import recipe_from_document  # noqa: E402
from amiforge.deploy.stack import template_parameters  # noqa: E402
from amiforge.localcloud.server import LocalCloud  # noqa: E402
from amiforge.steps.base import resolve_bases  # noqa: E402
from amiforge.steps.detect import detect  # noqa: E402
from amiforge.steps.env import StepEnv  # noqa: E402

K = 10
SIZES = (1, 10, 100, 1000)


def recipe_document(name: str, family: str) -> dict[str, Any]:
    return {"format": 1, "name": name, "description": None,
            "base": {"filter": {"owners": ["amazon"], "name": f"{family}-*",
                                "architecture": "x86_64"}},
            "build": {"platform": "linux", "script": "echo hi\n"},
            "image": {}, "retention": {}, "files": {}, "source": f"{name}.yaml"}


def count_calls(aws: AwsContext) -> Counter:
    calls: Counter = Counter()
    for service in ("ec2", "ssm", "dynamodb", "stepfunctions"):
        aws.client(service).meta.events.register(
            "before-call.*.*", lambda model, **_: calls.update([model.name]))
    return calls


def setup(env: StepEnv, cloud: LocalCloud, n: int, run: str) -> list[Recipe]:
    families = [f"bench{run}-{k}" for k in range(min(n, K))]
    for family in families:
        cloud.release_base(name=f"{family}-1", owner="amazon")
    recipes = []
    for i in range(n):
        doc = recipe_document(f"r{run}-{i}", families[i % len(families)])
        recipe = recipe_from_document(doc)
        env.store.publish(recipe.name, recipe.hash, recipe.to_document(), None)
        recipes.append(recipe)
    # Every recipe "already built" on its current base: claims as a build would leave them.
    bases = resolve_bases(env, [r.base for r in recipes])
    for recipe in recipes:
        ami = bases[recipe.base.query_key()].image_id or ""
        key = build_key(recipe.name, recipe.hash, ami)
        env.store.claim(recipe.name, key, build_id=key, base_ami=ami, recipe_hash=recipe.hash)
    return recipes


def naive(env: StepEnv, recipes: list[Recipe]) -> None:
    """lambda_build_ami: describe_images per recipe (its filter, every time)."""
    ec2 = env.client("ec2")
    for record in env.store.all_current():
        recipe = recipe_from_document(record["document"])
        if not recipe.name.startswith(recipes[0].name.split("-")[0] + "-"):
            continue
        args = recipe.base.describe_images_args()
        ec2.describe_images(Owners=args["Owners"], Filters=args["Filters"])


def measure(fn: Any, calls: Counter) -> tuple[int, float, Counter]:
    calls.clear()
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    return sum(calls.values()), elapsed, Counter(calls)


def main() -> None:
    results = []
    with LocalCloud() as cloud:
        os.environ.update(cloud.env())
        aws = AwsContext(region=cloud.region, endpoint_url=cloud.endpoint)
        db = aws.client("dynamodb")
        # Detection reads the catalog for builds it claimed: the template's table.
        catalog_table, _ = create_tables(db, "bench-detect")
        role = aws.client("iam").create_role(RoleName="bench", AssumeRolePolicyDocument="{}")
        machine = aws.client("stepfunctions").create_state_machine(
            name="bench", roleArn=role["Role"]["Arn"],
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}))
        for n in SIZES:
            # A fresh table per size keeps the Query to this size's recipes.
            table = f"bench-recipes-{n}"
            db.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "name", "AttributeType": "S"},
                                                  {"AttributeName": "version",
                                                   "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "name", "KeyType": "HASH"},
                                       {"AttributeName": "version", "KeyType": "RANGE"}],
                            GlobalSecondaryIndexes=[{  # as template.yaml's RecipesTable
                                "IndexName": "current",
                                "KeySchema": [{"AttributeName": "version", "KeyType": "HASH"},
                                              {"AttributeName": "name", "KeyType": "RANGE"}],
                                "Projection": {"ProjectionType": "ALL"}}])
            env = StepEnv(catalog_table=catalog_table, recipes_table=table,
                          state_machine_arn=machine["stateMachineArn"], aws=aws)
            recipes = setup(env, cloud, n, str(n))
            calls = count_calls(aws)
            steady_calls, steady_s, steady_by = measure(partial(detect, {}, env), calls)
            naive_calls, naive_s, naive_by = measure(partial(naive, env, recipes), calls)
            cloud.release_base(name=f"bench{n}-0-2", owner="amazon")
            report: dict[str, Any] = {}
            changed_calls, changed_s, changed_by = measure(
                partial(lambda e, out: out.update(detect({}, e)), env, report), calls)
            for service in ("ec2", "ssm", "dynamodb", "stepfunctions"):
                aws.client(service).meta.events.unregister("before-call.*.*")
            results.append({
                "recipes": n, "bases": min(n, K),
                "detect_unchanged": {"aws_calls": steady_calls, "seconds": round(steady_s, 3),
                                     "by_operation": dict(steady_by)},
                "detect_one_base_changed": {"aws_calls": changed_calls,
                                            "seconds": round(changed_s, 3),
                                            "builds_started": report.get("started"),
                                            "by_operation": dict(changed_by)},
                "naive_per_recipe_loop": {"aws_calls": naive_calls, "seconds": round(naive_s, 3),
                                          "by_operation": dict(naive_by)},
                "lookup_call_ratio_detect_over_naive": round(
                    (steady_by["DescribeImages"] + steady_by["GetParameters"])
                    / max(1, naive_by["DescribeImages"]), 4),
                "total_call_ratio_detect_over_naive": round(steady_calls / naive_calls, 4),
            })
    print(json.dumps({"benchmark": "detect", "machine": {"python": platform.python_version(),
                                                          "cpus": os.cpu_count(),
                                                          "platform": platform.platform()},
                      "results": results, "per_day": per_day(results)}, indent=2))


def per_day(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Calls a day at each size: detection on the template's schedule against each recipe
    checking its own base daily and hourly; and where detection becomes the cheaper."""
    schedule = template_parameters()["DetectSchedule"] or ""
    runs = runs_per_day(schedule)
    measured = {r["recipes"]: r["detect_unchanged"]["aws_calls"] for r in results}
    per_check = {r["recipes"]: r["naive_per_recipe_loop"]["by_operation"]["DescribeImages"]
                 / r["recipes"] for r in results}
    (check,) = set(per_check.values())  # one DescribeImages per recipe at every size
    return {
        "detect_schedule": schedule, "detect_runs_per_day": float(runs),
        "per_recipe_check_calls": check,
        "sizes": [{"recipes": n, "detect_calls_per_run": calls,
                   "detect_calls_per_day": calls_per_day(calls, runs),
                   "daily_check_calls_per_day": per_recipe_calls_per_day(n, DAILY, check),
                   "hourly_check_calls_per_day": per_recipe_calls_per_day(n, HOURLY, check)}
                  for n, calls in sorted(measured.items())],
        "crossover_recipes_vs_daily_check": crossover(measured, runs, DAILY, check),
        "crossover_recipes_vs_hourly_check": crossover(measured, runs, HOURLY, check),
    }


if __name__ == "__main__":
    main()
