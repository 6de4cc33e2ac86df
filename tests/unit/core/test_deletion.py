"""The deletion gate (core/deletion.py): every rule, by example and exhaustively."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amiforge.core.deletion import (
    DELETE,
    KEEP,
    ImageFacts,
    InstanceFacts,
    Owner,
    SnapshotFacts,
    decide_image,
    decide_instance,
    decide_snapshot,
    decide_tester,
    valid_build_id,
    valid_recipe_name,
)

KEY = "0123456789abcdef0123"
BUILD = f"web-{KEY}"
OWNER = Owner("web", BUILD)
TAGS = {"amiforge:recipe": "web", "amiforge:build-id": BUILD}


def facts(**changes: object) -> ImageFacts:
    base = ImageFacts(image_id="ami-1", region="us-east-1", tags=TAGS, owner=OWNER,
                      record_status="FAILED", record_images=(), latest={"us-east-1": "ami-9"})
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_failed_builds_unused_image_is_deleted_with_the_callers_reason() -> None:
    verdict = decide_image(facts(), "build failed")
    assert (verdict.action, verdict.reason, verdict.resource) == (DELETE, "build failed",
                                                                 "ami-1")
    assert verdict.delete


@pytest.mark.parametrize(("changes", "reason"), [
    ({"tags": {**TAGS, "amiforge:build-id": f"web-{KEY}-x"}}, "are not exactly build"),
    ({"tags": {**TAGS, "amiforge:recipe": "api"}}, "are not exactly build"),
    ({"tags": {}}, "are not exactly build"),
    ({"owner": Owner("web", "web-*")}, "not a valid recipe/build id"),
    ({"owner": Owner("web", "h1*")}, "not a valid recipe/build id"),
    ({"owner": Owner("w*", BUILD)}, "not a valid recipe/build id"),
    ({"owner": Owner("web", BUILD, stack="mine"),
      "tags": {**TAGS, "amiforge:stack": "other"}}, "made by stack 'other'"),
    ({"record_status": None}, "is not in this stack's catalog"),
    ({"record_status": "BUILDING"}, f"build {BUILD} is BUILDING: only an ended build's"),
    ({"record_status": "STARTING"}, f"build {BUILD} is STARTING: only an ended build's"),
    ({"latest": {"us-east-1": "ami-9", "eu-west-1": "ami-1"}}, "latest names it in eu-west-1"),
    ({"record_status": "AVAILABLE", "record_images": ("ami-1",)},
     "an image of an AVAILABLE build"),
    ({"uses": ("instance i-1 (running)",)}, "in use: instance i-1 (running)"),
    ({"use_unknown": "could not read uses in eu-west-1: Throttling"},
     "use unknown (could not read uses in eu-west-1: Throttling)"),
])
def test_each_rule_keeps(changes: dict, reason: str) -> None:
    verdict = decide_image(facts(**changes), "build failed")
    assert verdict.action == KEEP and not verdict.delete
    assert reason in verdict.reason


def test_retention_may_remove_an_available_builds_image_but_not_latest_or_in_use() -> None:
    chosen = facts(record_status="AVAILABLE", record_images=("ami-1",), retention_chose=True)
    assert decide_image(chosen, "old").delete
    assert not decide_image(replace(chosen, latest={"us-east-1": "ami-1"}), "old").delete
    assert not decide_image(replace(chosen, uses=("SSM parameter /x",)), "old").delete


def test_a_stray_image_of_an_available_build_is_not_its_image() -> None:
    stray = facts(record_status="AVAILABLE", record_images=("ami-2",))
    assert decide_image(stray, "stray").delete


def test_a_snapshot_is_deleted_only_when_ours_and_no_kept_image_stands_on_it() -> None:
    snap = SnapshotFacts(snapshot_id="snap-1", region="us-east-1", tags=TAGS, owner=OWNER,
                         record_status="FAILED")
    assert decide_snapshot(snap, "failed").delete
    assert "a kept image uses it: ami-2" in decide_snapshot(
        replace(snap, held_by=("ami-2",)), "failed").reason
    assert not decide_snapshot(replace(snap, record_status=None), "failed").delete
    assert not decide_snapshot(replace(snap, record_status="BUILDING"), "failed").delete
    assert not decide_snapshot(replace(snap, tags={}), "failed").delete


@pytest.mark.parametrize(("tags", "status", "reason"), [
    ({**TAGS, "amiforge:role": "builder"}, "BUILDING", f"build {BUILD} is BUILDING: only"),
    ({**TAGS, "amiforge:role": "builder"}, None, "is not in this stack's catalog"),
    ({**TAGS, "amiforge:role": "web"}, "FAILED", "not a builder or tester"),
    ({**TAGS}, "FAILED", "not a builder or tester"),
    ({**TAGS, "amiforge:build-id": "web-other"}, "FAILED", "are not exactly build"),
])
def test_a_builder_is_terminated_only_once_its_build_is_over(
        tags: dict[str, str], status: str | None, reason: str) -> None:
    verdict = decide_instance(InstanceFacts("i-1", tags, OWNER, status), "cleanup")
    assert not verdict.delete and reason in verdict.reason
    for over in ("AVAILABLE", "FAILED", "PRUNED", "CANCELLED"):
        for role in ("builder", "tester"):  # a test instance is cleaned like a builder
            assert decide_instance(InstanceFacts("i-1", {**TAGS, "amiforge:role": role},
                                                 OWNER, over), "cleanup").delete


@pytest.mark.parametrize(("tags", "status", "reason"), [
    ({**TAGS, "amiforge:role": "builder"}, "BUILDING", "not a tester"),
    ({**TAGS, "amiforge:role": "tester"}, None, "is not in this stack's catalog"),
    ({**TAGS, "amiforge:role": "tester", "amiforge:build-id": "web-other"}, "BUILDING",
     "are not exactly build"),
    ({**TAGS, "amiforge:role": "tester", "amiforge:recipe": "api"}, "BUILDING",
     "are not exactly build"),
])
def test_the_test_phase_terminates_only_its_own_tester(
        tags: dict[str, str], status: str | None, reason: str) -> None:
    verdict = decide_tester(InstanceFacts("i-1", tags, OWNER, status), "test judged")
    assert not verdict.delete and reason in verdict.reason
    # Its own tester goes while the build still runs (the test phase judged it).
    assert decide_tester(InstanceFacts("i-1", {**TAGS, "amiforge:role": "tester"}, OWNER,
                                       "BUILDING"), "test judged").delete


@pytest.mark.parametrize("build_id", [BUILD, f"web-{KEY}-20261201T101010", f"web-{KEY}-r2"])
def test_build_ids_of_the_exact_formats_pass(build_id: str) -> None:
    assert valid_build_id(build_id, "web")
    assert valid_build_id(build_id)


@pytest.mark.parametrize(("build_id", "recipe"), [
    ("h1*", None), ("*", None), (f"web-{KEY}*", "web"), (f"web-{KEY[:-1]}?", "web"),
    (f"web-{KEY}", "api"), (f"web-{KEY.upper()}", "web"), ("", None), (None, None),
    (f"web-{KEY}-", "web"), (f"web-{KEY}-a*b", "web"), (f"web-{KEY} ", "web"),
    (f"we-{KEY}", "web"), (f"web-x-{KEY}", "web"), (42, None), (f"web-{KEY}-" + "a" * 21, "web"),
])
def test_anything_else_is_refused(build_id: object, recipe: str | None) -> None:
    assert not valid_build_id(build_id, recipe)


def test_recipe_names() -> None:
    assert valid_recipe_name("web-1") and valid_recipe_name("a" * 40)
    assert not any(valid_recipe_name(n) for n in ("", "-web", "Web", "w*", "a" * 41, None))


# -- exhaustive: the gate deletes exactly when every rule allows ---------------------------
_text = st.text(alphabet="abc*?-0123456789", max_size=6)
_image = st.sampled_from(["ami-1", "ami-2"])


@given(tag_recipe=st.sampled_from(["web", "api", None]),
       tag_build=st.sampled_from([BUILD, f"web-{KEY}-x", None]),
       owner_build=st.one_of(st.just(BUILD), _text.map(lambda t: "web-" + t)),
       status=st.sampled_from([None, "BUILDING", "AVAILABLE", "FAILED", "PRUNED"]),
       record_images=st.lists(_image, max_size=2),
       latest=st.dictionaries(st.sampled_from(["us-east-1", "eu-west-1"]),
                              st.one_of(st.none(), _image), max_size=2),
       chosen=st.booleans(), uses=st.lists(st.just("instance i-1 (running)"), max_size=1),
       unknown=st.one_of(st.none(), st.just("region down")))
def test_the_gate_deletes_exactly_when_every_rule_allows(
        tag_recipe: str | None, tag_build: str | None, owner_build: str, status: str | None,
        record_images: list[str], latest: dict[str, str | None], chosen: bool,
        uses: list[str], unknown: str | None) -> None:
    tags = {k: v for k, v in (("amiforge:recipe", tag_recipe),
                              ("amiforge:build-id", tag_build)) if v}
    image = facts(tags=tags, owner=Owner("web", owner_build), record_status=status,
                  record_images=tuple(record_images), latest=latest, retention_chose=chosen,
                  uses=tuple(uses), use_unknown=unknown)
    verdict = decide_image(image, "why")
    allowed = (owner_build == BUILD and tag_recipe == "web" and tag_build == BUILD
               and status in {"AVAILABLE", "FAILED", "PRUNED"}
               and "ami-1" not in latest.values()
               and not (status == "AVAILABLE" and "ami-1" in record_images and not chosen)
               and not uses and unknown is None)
    assert verdict.delete is allowed
    assert verdict.reason == "why" if allowed else verdict.reason


@given(st.text(max_size=90))
def test_no_text_with_a_wildcard_is_a_build_id(text: str) -> None:
    if "*" in text or "?" in text or "[" in text:
        assert not valid_build_id(text)
        assert not valid_build_id(text, "web")


@given(status=st.sampled_from([None, "BUILDING", "AVAILABLE", "FAILED"]), chosen=st.booleans(),
       latest=st.sampled_from([None, "ami-1", "ami-2"]),
       tagged=st.booleans(), uses=st.lists(st.just("instance i-1 (running)"), max_size=1),
       unknown=st.one_of(st.none(), st.just("region down")))
def test_more_facts_only_ever_keep(status: str | None, chosen: bool, latest: str | None,
                                   tagged: bool, uses: list[str], unknown: str | None) -> None:
    """What steps/gate.py relies on to skip the usage scan: a keep without uses stays a
    keep, with the same reason, whatever the uses turn out to be."""
    first = facts(record_status=status, retention_chose=chosen, record_images=("ami-1",),
                  latest={"us-east-1": latest}, tags=TAGS if tagged else {})
    without = decide_image(first, "why")
    with_uses = decide_image(replace(first, uses=tuple(uses), use_unknown=unknown), "why")
    if not without.delete:
        assert (with_uses.action, with_uses.reason) == (without.action, without.reason)
