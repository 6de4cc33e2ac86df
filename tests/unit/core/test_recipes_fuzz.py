"""Fuzzing recipe validation: whatever a person writes, the answer is a Recipe or a
RecipeInvalid naming the problem, never another exception (a traceback in `validate`).

Four doors, each fed by hypothesis: recipe documents as the stack stores them
(``recipe_from_document``), recipe files on disk as YAML text, mutated from a valid
recipe (``load_recipes``), and arbitrary bytes where a recipe file or its script should
be; and hostile recipe directories (symlinks out, FIFOs, devices, huge files, deep
nesting, control characters), where every refusal must name its file and field.
Example counts stay modest: the whole module runs in seconds.
"""

from __future__ import annotations

import os
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amiforge.core.files import READ_LIMIT
from amiforge.core.model import Recipe
from amiforge.core.parse import recipe_from_document
from amiforge.core.recipes import load_recipes
from amiforge.core.rules import CONTROL
from amiforge.errors import RecipeInvalid

FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

VALID = textwrap.dedent("""\
    name: web
    description: Nginx tier
    base:
      ssm_parameter: /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64
    build:
      platform: linux
      user_data: scripts/web.sh
      instance_types: [t3.small, t3a.small]
      timeout_minutes: 45
      retries: 1
    image:
      name: "web-{date}-{short_hash}"
      tags: {team: web}
      regions: [eu-west-1]
      share_with: ["111122223333"]
    retention: {keep: 5, max_age_days: 90}
    """)

scalars = (st.none() | st.booleans() | st.integers(-10**12, 10**12)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40)
           | st.sampled_from(["", "linux", "windows", "t3.small", "web", "*", "{date}",
                              "/aws/service/x", "alias/k", "111122223333", "eu-west-1",
                              "scripts/web.sh", "../../etc/passwd", "/etc/passwd"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=12) | st.integers(), inner, max_size=4),
                      max_leaves=12)


def _valid_document() -> dict[str, Any]:
    return yaml.safe_load(VALID)


@st.composite
def mutated_documents(draw: st.DrawFn) -> Any:
    """A valid recipe with some fields replaced, removed or added at any depth."""
    doc = _valid_document()
    for _ in range(draw(st.integers(0, 3))):
        node: Any = doc
        path = draw(st.lists(st.sampled_from(
            ["name", "description", "base", "build", "image", "retention", "ssm_parameter",
             "filter", "owners", "platform", "user_data", "script", "instance_types",
             "timeout_minutes", "retries", "subnet_id", "security_group_ids", "tags",
             "regions", "share_with", "kms_key_id", "keep", "max_age_days", "extra"]),
            min_size=1, max_size=3))
        for key in path[:-1]:
            if isinstance(node, dict) and isinstance(node.get(key), dict):
                node = node[key]
        if not isinstance(node, dict):
            continue
        if draw(st.booleans()):
            node[path[-1]] = draw(values)
        else:
            node.pop(path[-1], None)
    return doc


def _judge(load: Any) -> None:
    try:
        recipe = load()
    except RecipeInvalid as err:
        assert err.problems, "a RecipeInvalid must name at least one problem"
        assert all(str(p) for p in err.problems)
        return
    recipes = recipe if isinstance(recipe, list) else [recipe]
    assert all(isinstance(r, Recipe) for r in recipes)
    for r in recipes:  # a valid recipe survives the trip through the store
        assert recipe_from_document(r.to_document()).hash == r.hash


@FUZZ
@given(doc=st.one_of(values, mutated_documents()))
def test_any_document_is_a_recipe_or_recipe_invalid(doc: Any) -> None:
    if isinstance(doc, dict):
        doc = {**doc, "files": {"scripts/web.sh": "IyEvYmluL2Jhc2gKZWNobyBoaQo="}}
    _judge(lambda: recipe_from_document(doc))


@FUZZ
@given(doc=mutated_documents(), script=st.binary(max_size=200) | st.just(b"echo ok\n"))
def test_any_recipe_file_is_a_recipe_or_recipe_invalid(doc: Any, script: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "scripts").mkdir()
        (root / "scripts" / "web.sh").write_bytes(script)
        (root / "web.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
        _judge(lambda: load_recipes(root))


@FUZZ
@given(text=st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    # A valid file with a burst of arbitrary characters spliced in somewhere.
    st.tuples(st.integers(0, len(VALID)), st.text(max_size=20)).map(
        lambda cut: VALID[:cut[0]] + cut[1] + VALID[cut[0]:]),
    st.sampled_from(["", "---", "name: [", "!!python/object:os.system {}", "&a [*a]",
                     "a: &x 1\nb: *x\n<<: {c: 1}", "name: web\nname: web\n", "? [a]\n: 1",
                     "base: !!binary aGVsbG8=", "build: {timeout_minutes: 1e999}",
                     "name: 2024-01-01", "[1, 2", "\t- x", "\x00", "%YAML 9.9\n---\n"])))
def test_any_yaml_text_is_a_recipe_or_recipe_invalid(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "scripts").mkdir()
        (root / "scripts" / "web.sh").write_text("#!/bin/bash\necho ok\n")
        (root / "web.yaml").write_text(text, encoding="utf-8", errors="surrogateescape")
        _judge(lambda: load_recipes(root))


@FUZZ
@given(raw=st.binary(max_size=300))
def test_any_bytes_in_a_recipe_file_give_recipe_invalid_or_recipe(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "web.yaml").write_bytes(raw)
        _judge(lambda: load_recipes(Path(tmp)))


# --- hostile recipe directories --------------------------------------------------------
# Symlinks in and out of the directory, FIFOs, devices, directories, files over the read
# bound, deep nesting and control characters. A hang (a FIFO opened blocking, /dev/zero
# read to the end) would stop this test rather than fail it, which is why every special
# file here is one that would block or never end if read naively.

SCRIPT_KINDS = ("regular", "symlink_inside", "symlink_outside", "dotdot", "fifo", "directory",
                "missing", "huge", "dev_zero", "empty", "nul_in_path", "long_path",
                "control_in_path")
BAD_SCRIPTS = frozenset(SCRIPT_KINDS) - {"regular", "symlink_inside"}
RECIPE_EXTRAS = ("none", "fifo", "symlink_outside", "deep", "dev_null", "directory")
control_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
                       max_size=20)


def _write_script(root: Path, outside: Path, kind: str) -> str:
    scripts = root / "scripts"
    scripts.mkdir()
    target = scripts / "web.sh"
    if kind in ("regular", "symlink_inside"):
        (scripts / "real.sh").write_text("echo ok\n")
        if kind == "regular":
            target.write_text("echo ok\n")
        else:
            target.symlink_to("real.sh")
    elif kind == "symlink_outside":
        target.symlink_to(outside)
    elif kind == "dotdot":
        return "../" * 12 + str(outside).lstrip("/")
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    elif kind == "huge":
        with target.open("wb") as sparse:
            sparse.truncate(READ_LIMIT + 1)
    elif kind == "dev_zero":
        target.symlink_to("/dev/zero")
    elif kind == "empty":
        target.write_text("")
    elif kind == "nul_in_path":
        return "scripts/web\x00.sh"
    elif kind == "long_path":
        return "a/" * 3000 + "web.sh"
    elif kind == "control_in_path":
        return "scripts/web\x1b.sh"
    return "scripts/web.sh"


def _write_extra(root: Path, outside: Path, kind: str, depth: int) -> None:
    extra = root / "extra.yaml"
    if kind == "fifo":
        os.mkfifo(extra)
    elif kind == "symlink_outside":
        extra.symlink_to(outside)
    elif kind == "deep":
        extra.write_text("name: " + "[" * depth + "]" * depth + "\n")
    elif kind == "dev_null":
        extra.symlink_to("/dev/null")
    elif kind == "directory":
        extra.mkdir()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script_kind=st.sampled_from(SCRIPT_KINDS), extra=st.sampled_from(RECIPE_EXTRAS),
       depth=st.integers(1, 400), description=control_text, tag=control_text,
       glob=st.sampled_from(["", " ", "al2023-*", "a\x00b"]))
def test_hostile_recipe_directories_are_refused_by_file_and_field(
        script_kind: str, extra: str, depth: int, description: str, tag: str,
        glob: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root, outside = Path(tmp) / "recipes", Path(tmp) / "secret.txt"
        root.mkdir()
        outside.write_text("aws_secret_access_key=outside-the-recipe-directory\n")
        doc = _valid_document()
        doc["build"]["user_data"] = _write_script(root, outside, script_kind)
        doc["description"] = description
        doc["image"]["tags"] = {"team": tag}
        if glob != "al2023-*":
            doc["base"] = {"filter": {"owners": ["amazon"], "name": glob}}
        doc["image"].pop("share_with")  # needs a KMS key: keep the baseline valid
        text = yaml.safe_dump(doc, allow_unicode=True)
        (root / "web.yaml").write_text(text)
        loaded = yaml.safe_load(text)  # YAML folds some characters (NEL) into spaces
        _write_extra(root, outside, extra, depth)
        try:
            recipes = load_recipes(root)
        except RecipeInvalid as err:
            problems = err.problems
        else:
            problems = []
            assert all("outside-the-recipe-directory" not in str(r.files) for r in recipes)
        files = {str(root / "web.yaml"), str(root / "extra.yaml")}
        for problem in problems:
            assert problem.where in files, problem
            assert "\n" not in str(problem), problem
        fields = {p.field for p in problems if p.where == str(root / "web.yaml")}
        if script_kind in BAD_SCRIPTS:
            assert "build.user_data" in fields
        if extra in ("fifo", "symlink_outside", "dev_null") or (extra == "deep" and depth > 64):
            assert (str(root / "extra.yaml"), None) in {(p.where, p.field) for p in problems}
        if glob != "al2023-*":
            assert "base.filter.name" in fields
        if CONTROL.search(loaded["description"]):
            assert "description" in fields
        if CONTROL.search(loaded["image"]["tags"]["team"]):
            assert "image.tags" in fields
        if not problems:
            assert script_kind not in BAD_SCRIPTS
