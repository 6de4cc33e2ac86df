"""Cleanup messages are untrusted: the schema refuses anything but exact values."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amiforge.core.cleanup_message import MAX_BYTES, BadMessage, CleanupMessage, parse

KEY = "0123456789abcdef0123"


def test_a_message_as_finish_sends_it_parses() -> None:
    body = json.dumps({"recipe": "web", "build_id": f"web-{KEY}", "status": "AVAILABLE",
                       "keep_image": "ami-0123456789abcdef0", "regions": ["eu-west-1"]})
    assert parse(body) == CleanupMessage("web", f"web-{KEY}", "AVAILABLE",
                                         "ami-0123456789abcdef0", ("eu-west-1",))
    assert parse(json.dumps({"recipe": "web", "build_id": f"web-{KEY}-20261201T101010",
                             "keep_image": None, "regions": None})).regions == ()


@pytest.mark.parametrize(("body", "reason"), [
    ("poison", "not JSON"),
    (json.dumps(["web"]), "not a JSON object"),
    (json.dumps({"recipe": "web"}), "build_id is missing"),
    (json.dumps({"recipe": "web", "build_id": ""}), "build_id is missing"),
    (json.dumps({"recipe": "web", "build_id": "h1*"}), "'h1*' is not a build id"),
    (json.dumps({"recipe": "web", "build_id": "*"}), "'*' is not a build id"),
    (json.dumps({"recipe": "web", "build_id": f"web-{KEY[:-1]}?"}), "is not a build id"),
    (json.dumps({"recipe": "web", "build_id": f"api-{KEY}"}),
     f"build_id 'api-{KEY}' is not a build of recipe 'web'"),
    (json.dumps({"recipe": "w*", "build_id": f"web-{KEY}"}), "'w*' is not a recipe name"),
    (json.dumps({"build_id": f"web-{KEY}"}), "None is not a recipe name"),
    (json.dumps({"recipe": "web", "build_id": f"web-{KEY}", "filters": "x"}),
     "unknown field(s) filters"),
    (json.dumps({"recipe": "web", "build_id": f"web-{KEY}", "keep_image": "ami-*"}),
     "keep_image 'ami-*' is not an image id"),
    (json.dumps({"recipe": "web", "build_id": f"web-{KEY}", "regions": "eu-west-1"}),
     "is not a list of region names"),
    (json.dumps({"recipe": "web", "build_id": f"web-{KEY}", "regions": ["eu-*"]}),
     "is not a list of region names"),
    (json.dumps({"recipe": "web", "build_id": f"web-{KEY}", "status": "BUILDING"}),
     "status 'BUILDING' is not one of"),
    ("x" * (MAX_BYTES + 1), "larger than"),
    (None, "not text"),
])
def test_a_bad_message_is_refused_with_the_reason(body: object, reason: str) -> None:
    with pytest.raises(BadMessage) as caught:
        parse(body)
    assert reason in str(caught.value)


@given(st.one_of(st.text(max_size=200), st.dictionaries(
    st.sampled_from(["recipe", "build_id", "status", "keep_image", "regions", "x"]),
    st.one_of(st.none(), st.text(max_size=40), st.integers(), st.lists(st.text(max_size=12))),
).map(json.dumps)))
def test_any_body_parses_or_is_refused_and_never_yields_a_pattern(body: str) -> None:
    try:
        message = parse(body)
    except BadMessage as err:
        assert str(err)
        return
    assert not set("*?[]") & set(message.build_id + message.recipe)
    assert message.build_id.startswith(message.recipe + "-")
