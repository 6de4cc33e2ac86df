"""``release: {approval: manual, approval_timeout_hours: N}``: parsed, bounded, hashed, and
refused with one line per problem when hostile; and the pure pieces of the approval gate
(its failure reasons, the sweeper's budget, the in-flight statuses)."""

from __future__ import annotations

from typing import Any

import pytest

from amiforge.core.deletion import ImageFacts, InstanceFacts, Owner, decide_image, decide_instance
from amiforge.core.failures import failure_reason
from amiforge.core.model import DEFAULT_APPROVAL_TIMEOUT_HOURS, ReleaseSpec
from amiforge.core.parse import recipe_from_document
from amiforge.core.statuses import IN_FLIGHT, OVER, BuildStatus
from amiforge.core.sweep_judge import recipe_budget_minutes

from ..conftest import RecipeDir


def test_no_release_section_means_no_gate_and_the_hash_it_always_had(
        recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid())
    (plain,) = recipe_dir.load()
    assert plain.release == ReleaseSpec() and not plain.release.manual
    assert "release" not in {k for k, v in plain.spec_document().items() if v is not None}
    recipe_dir.recipe(recipe_dir.valid(release={"approval": "none"}))
    (explicit,) = recipe_dir.load()
    assert explicit.hash == plain.hash


def test_manual_approval_is_parsed_hashed_and_survives_publishing(
        recipe_dir: RecipeDir) -> None:
    recipe_dir.recipe(recipe_dir.valid())
    (plain,) = recipe_dir.load()
    recipe_dir.recipe(recipe_dir.valid(release={"approval": "manual"}))
    (gated,) = recipe_dir.load()
    assert gated.release == ReleaseSpec("manual", DEFAULT_APPROVAL_TIMEOUT_HOURS)
    # The release policy is part of the version: publishing the change stores it.
    assert gated.hash != plain.hash
    recipe_dir.recipe(recipe_dir.valid(release={"approval": "manual",
                                                "approval_timeout_hours": 1}))
    (short,) = recipe_dir.load()
    assert short.release.approval_timeout_hours == 1 and short.hash != gated.hash
    again = recipe_from_document(short.to_document())
    assert again.release == short.release and again.hash == short.hash


HOURS = ("release.approval_timeout_hours", "is {value}; use a whole number from 1 to 720")


@pytest.mark.parametrize("release, expected", [
    ({"approval": "auto"}, [("release.approval",
                             "'auto' is not a valid approval mode: use none or manual")]),
    ({"approval": "MANUAL"}, [("release.approval",
                               "'MANUAL' is not a valid approval mode: use none or manual")]),
    ({"approval": True}, [("release.approval", "must be a string, got true")]),
    ({"approval": ["manual"]}, [("release.approval", "must be a string, got a list")]),
    ({"approval": "manual", "approval_timeout_hours": 0}, [(HOURS[0], HOURS[1].format(value=0))]),
    ({"approval": "manual", "approval_timeout_hours": -5},
     [(HOURS[0], HOURS[1].format(value=-5))]),
    ({"approval": "manual", "approval_timeout_hours": 721},
     [(HOURS[0], HOURS[1].format(value=721))]),
    ({"approval": "manual", "approval_timeout_hours": 10**30},
     [(HOURS[0], HOURS[1].format(value=10**30))]),
    ({"approval": "manual", "approval_timeout_hours": "72"},
     [(HOURS[0], "must be a whole number, got '72'")]),
    ({"approval": "manual", "approval_timeout_hours": 1.5},
     [(HOURS[0], "must be a whole number, got the number 1.5")]),
    ({"approval": "manual", "approval_timeout_hours": True},
     [(HOURS[0], "must be a whole number, got true")]),
    ({"approval_timeout_hours": 5},
     [(HOURS[0], "applies only with approval: manual; set release.approval: manual or "
                 "remove approval_timeout_hours")]),
    ({"aproval": "manual"}, [("release.aproval", "unknown key; did you mean 'approval'?")]),
    ({"approval": "manual", "launch": 1},
     [("release.launch", "unknown key; release takes: approval, approval_timeout_hours, "
                        "launch_templates, instance_refresh")]),
])
def test_hostile_release_values_are_refused_naming_the_field(
        recipe_dir: RecipeDir, release: dict[str, Any],
        expected: list[tuple[str, str]]) -> None:
    recipe_dir.recipe(recipe_dir.valid(release=release))
    assert [(f, m) for _w, f, m in recipe_dir.problems()] == expected


@pytest.mark.parametrize("release", ["manual", ["approval"], 3])
def test_a_release_that_is_not_a_mapping_is_refused(recipe_dir: RecipeDir,
                                                    release: Any) -> None:
    recipe_dir.recipe(recipe_dir.valid(release=release))
    [(_where, field, message)] = recipe_dir.problems()
    assert field == "release" and message.startswith("must be a mapping of fields")


def test_rejection_and_timeout_read_as_reasons() -> None:
    assert failure_reason({"Error": "ApprovalRejected", "Cause": "CVE-2026-1 (by ana)"}) == \
        "rejected: CVE-2026-1 (by ana)"
    assert failure_reason({"Error": "ApprovalRejected", "Cause": ""}) == \
        "rejected: no reason given"
    assert failure_reason({"Error": "ApprovalTimedOut", "Cause": "nobody answered"}) == \
        "approval timed out: nobody answered"


def test_a_build_awaiting_approval_is_in_flight_and_its_wait_is_in_the_sweep_budget(
        recipe_dir: RecipeDir) -> None:
    assert BuildStatus.AWAITING_APPROVAL in IN_FLIGHT
    assert BuildStatus.AWAITING_APPROVAL not in OVER
    recipe_dir.recipe(recipe_dir.valid())
    (plain,) = recipe_dir.load()
    recipe_dir.recipe(recipe_dir.valid(release={"approval": "manual",
                                                "approval_timeout_hours": 72}))
    (gated,) = recipe_dir.load()
    extra = (recipe_budget_minutes(gated, image_timeout_minutes=240)
             - recipe_budget_minutes(plain, image_timeout_minutes=240))
    assert extra == 72 * 60


def test_the_gate_lets_a_waiting_builds_builder_go_but_keeps_its_image() -> None:
    owner = Owner("web", "web-0123456789abcdef0123", stack="amiforge")
    tags = {"amiforge:recipe": "web", "amiforge:build-id": owner.build_id,
            "amiforge:stack": "amiforge"}
    builder = decide_instance(InstanceFacts("i-0123456789abcdef0",
                                            {**tags, "amiforge:role": "builder"}, owner,
                                            "AWAITING_APPROVAL"), "image made")
    assert builder.delete
    tester = decide_instance(InstanceFacts("i-0123456789abcdef1",
                                           {**tags, "amiforge:role": "tester"}, owner,
                                           "AWAITING_APPROVAL"), "image made")
    assert tester.delete  # the test phase is over before the gate: a tester left may go
    stranger = decide_instance(InstanceFacts("i-0123456789abcdef2",
                                             {**tags, "amiforge:role": "consumer"}, owner,
                                             "AWAITING_APPROVAL"), "image made")
    assert not stranger.delete and stranger.reason == "not a builder or tester"
    image = decide_image(ImageFacts("ami-0123456789abcdef0", "us-east-1", tags, owner,
                                    "AWAITING_APPROVAL"), "cleanup")
    assert not image.delete
    assert image.reason == f"build {owner.build_id} is AWAITING_APPROVAL: only an ended " \
                           "build's are removed"
    building = decide_instance(InstanceFacts("i-0123456789abcdef0",
                                             {**tags, "amiforge:role": "builder"}, owner,
                                             "BUILDING"), "x")
    assert not building.delete
