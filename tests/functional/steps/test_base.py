"""Resolving base images (``steps/base.py``) on the local cloud.

Each distinct base is asked of AWS once: SSM parameters in one GetParameters, identical
image filters in one DescribeImages, however many recipes share them, and filters that
differ only in their name pattern share one call too; the newest matching image wins. A recipe's base parameter is read only where the stack allows, and
a value that is not an AMI id is refused naming the parameter and never echoed: not in
plan output, the recipe store, detection's report, the execution input, the catalog,
failure reasons or logs (formerly test_base_parameter_secrets.py).

SSM, EC2 and DynamoDB are real (tables shaped as the template's); the state machine is
not needed (no build may start).
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import AL2023, CallCounter, create_tables

from amiforge.aws.session import AwsContext
from amiforge.core.model import BaseSpec
from amiforge.core.recipes import load_recipes
from amiforge.errors import NotFound, RecipeInvalid
from amiforge.ops.plan import plan
from amiforge.ops.publish import publish
from amiforge.steps.base import resolve_bases, resolve_one
from amiforge.steps.detect import detect
from amiforge.steps.env import StepEnv
from amiforge.steps.resolve import resolve

SECRET = "hunter2-Pr0d-DB-p4ssw0rd/AKIAIOSFODNN7EXAMPLE"


@pytest.fixture
def aws(local_cloud: Any) -> AwsContext:
    return AwsContext(region=local_cloud.region, endpoint_url=local_cloud.endpoint)


def _tables(aws: AwsContext) -> tuple[str, str]:
    return create_tables(aws.client("dynamodb"))


def _recipe(tmp_path: Path, parameter: str) -> Path:
    (tmp_path / "web.yaml").write_text(
        f"name: web\nbase: {{ssm_parameter: {parameter}}}\nbuild: {{script: echo hi}}\n")
    return tmp_path


def _everything_in(aws: AwsContext, *tables: str) -> str:
    db = aws.client("dynamodb")
    return json.dumps([db.scan(TableName=t)["Items"] for t in tables])


def test_a_secret_valued_parameter_is_refused_and_never_echoed(
        aws: AwsContext, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.INFO)  # botocore DEBUG logs wire bodies, the put below too
    caplog.set_level(logging.DEBUG, logger="amiforge")
    prefix = f"/golden-{uuid.uuid4().hex[:8]}/"
    parameter = f"{prefix}db/password"
    aws.client("ssm").put_parameter(Name=parameter, Value=SECRET, Type="String")
    catalog, recipes_table = _tables(aws)
    env = StepEnv(catalog_table=catalog, recipes_table=recipes_table, aws=aws,
                  base_parameter_prefixes=(prefix,))
    recipes = load_recipes(_recipe(tmp_path, parameter), base_prefixes=(prefix,))

    [decision] = plan(env, recipes)
    planned = json.dumps(decision.as_dict())
    assert decision.action == "skip" and decision.base_ami is None
    assert decision.detail == (f"SSM parameter {parameter} does not hold an AMI id (ami- and 8 "
                               "or 17 hex digits); its value is not shown. Point "
                               "base.ssm_parameter at a parameter that holds the base "
                               "image's id")

    published = json.dumps(publish(env, recipes, None))
    report = json.dumps(detect({"recipes": ["web"], "trigger": "publish"}, env))
    assert json.loads(report)["started"] == 0  # so no execution input exists at all

    with pytest.raises(NotFound) as info:
        resolve({"input": {"recipe": "web"}, "build_id": "web-x"}, env)
    assert parameter in str(info.value)

    seen = [planned, published, report, str(info.value), _everything_in(aws, catalog,
                                                                        recipes_table),
            caplog.text, *capsys.readouterr()]
    for text in seen:
        assert SECRET not in text
        assert "hunter2" not in text and "AKIAIOSFODNN7EXAMPLE" not in text


def test_a_parameter_outside_the_allowed_prefixes_is_never_read_nor_published(
        aws: AwsContext, tmp_path: Path) -> None:
    parameter = f"/prod-{uuid.uuid4().hex[:8]}/db/password"
    aws.client("ssm").put_parameter(Name=parameter, Value=SECRET, Type="String")
    catalog, recipes_table = _tables(aws)
    env = StepEnv(catalog_table=catalog, recipes_table=recipes_table, aws=aws)
    # A good recipe sorted first: publish must not store it before refusing the second.
    (tmp_path / "a.yaml").write_text("name: a\nbase: {ssm_parameter: /aws/service/x}\n"
                                     "build: {script: echo a}\n")
    recipes = load_recipes(_recipe(tmp_path, parameter))  # no stack: not checked here
    assert [r.name for r in recipes] == ["a", "web"]

    decision = plan(env, recipes)[1]
    assert decision.action == "skip"
    assert decision.detail.startswith(f"base.ssm_parameter {parameter!r} is not under "
                                      "/aws/service/; to use your own, deploy with -p "
                                      "BaseParameterPrefixes=/your/prefix/")
    # publish refuses before its first write, naming the file and field
    with pytest.raises(RecipeInvalid) as info:
        publish(env, recipes, None)
    [problem] = info.value.problems
    assert (problem.where, problem.field) == (str(tmp_path / "web.yaml"), "base.ssm_parameter")
    assert aws.client("dynamodb").scan(TableName=recipes_table)["Items"] == []


def test_an_ami_valued_allowed_parameter_resolves(aws: AwsContext, tmp_path: Path,
                                                  local_cloud: Any) -> None:
    prefix = f"/golden-{uuid.uuid4().hex[:8]}/"
    image_id = local_cloud.release_base(f"golden-{uuid.uuid4().hex[:6]}", owner="amazon",
                                        ssm_parameter=f"{prefix}al2023")
    catalog, recipes_table = _tables(aws)
    env = StepEnv(catalog_table=catalog, recipes_table=recipes_table, aws=aws,
                  base_parameter_prefixes=(prefix,))
    [decision] = plan(env, load_recipes(_recipe(tmp_path, f"{prefix}al2023")))
    assert (decision.action, decision.base_ami) == ("build", image_id)



def test_each_distinct_base_is_asked_once_and_the_newest_match_wins(
        aws: AwsContext, local_cloud: Any) -> None:
    family = f"vendor-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    older = local_cloud.release_base(f"{family}-1", creation_date=now - timedelta(days=2))
    newer = local_cloud.release_base(f"{family}-2", creation_date=now - timedelta(days=1))
    env = StepEnv(catalog_table="", recipes_table="", aws=aws)
    by_filter = [BaseSpec(owners=owners, name=f"{family}-*")
                 for owners in (("amazon",), ("amazon",), ("amazon",))]
    by_parameter = [BaseSpec(ssm_parameter=AL2023)] * 3
    missing = BaseSpec(ssm_parameter="/aws/service/no-such/parameter")
    nothing = BaseSpec(owners=("amazon",), name=f"{family}-none-*")

    with CallCounter(aws.client("ssm")) as ssm, CallCounter(aws.client("ec2")) as ec2:
        resolved = resolve_bases(env, [*by_filter, *by_parameter, missing, nothing])

    assert ssm.calls == {"GetParameters": 1}
    # Two distinct filters, one owner and architecture: one call, not two (nor five).
    assert ec2.calls == {"DescribeImages": 1}
    assert resolved[by_filter[0].query_key()].image_id == newer != older
    al2023 = aws.client("ssm").get_parameter(Name=AL2023)["Parameter"]["Value"]
    assert resolved[by_parameter[0].query_key()].image_id == al2023
    assert resolved[missing.query_key()].problem == (
        "SSM parameter /aws/service/no-such/parameter does not exist")
    assert resolved[nothing.query_key()].problem.startswith("no available image matches")
    with pytest.raises(NotFound, match="base image not found: no available image") as info:
        resolve_one(env, nothing)
    assert info.value.hint == ("check the recipe's base.ssm_parameter, base.filter or "
                               "base.image_id")


def test_filters_differing_only_in_name_share_a_call_and_keep_their_own_answers(
        aws: AwsContext, local_cloud: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    images = {}
    for family, arch, days in (("a", "x86_64", 3), ("a", "x86_64", 1), ("b", "x86_64", 2),
                               ("b", "arm64", 0), ("c", "x86_64", 5)):
        images[(family, arch, days)] = local_cloud.release_base(
            f"{tag}{family}-{days}", architecture=arch,
            creation_date=now - timedelta(days=days))
    other_owner = local_cloud.release_base(f"{tag}a-0", owner="self", creation_date=now)
    env = StepEnv(catalog_table="", recipes_table="", aws=aws)
    a, b, c = (BaseSpec(owners=("amazon",), name=f"{tag}{f}-*", architecture="x86_64")
               for f in "abc")
    b_arm = BaseSpec(owners=("amazon",), name=f"{tag}b-*", architecture="arm64")
    a_self = BaseSpec(owners=("self",), name=f"{tag}a-*", architecture="x86_64")
    every = BaseSpec(owners=("amazon",), name=f"{tag}?-*", architecture="x86_64")
    none = BaseSpec(owners=("amazon",), name=f"{tag}z-*", architecture="x86_64")

    with CallCounter(aws.client("ec2")) as ec2:
        resolved = resolve_bases(env, [a, b, c, b_arm, a_self, every, none, a])

    # amazon/x86_64 (a, b, c, every, none), amazon/arm64, self/x86_64: three groups.
    assert ec2.calls == {"DescribeImages": 3}
    assert {base.name: resolved[base.query_key()].image_id for base in (a, b, c, every)} == {
        a.name: images[("a", "x86_64", 1)], b.name: images[("b", "x86_64", 2)],
        c.name: images[("c", "x86_64", 5)], every.name: images[("a", "x86_64", 1)]}
    assert resolved[b_arm.query_key()].image_id == images[("b", "arm64", 0)]
    assert resolved[a_self.query_key()].image_id == other_owner
    assert resolved[none.query_key()].image_id is None
    assert resolved[none.query_key()].problem == f"no available image matches {none.query_key()}"
