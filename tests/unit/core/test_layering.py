"""The layer contract of docs/architecture.md, read from the source's imports.

* The core stays pure: no module under ``amiforge/core`` imports boto3 or botocore.
* No import cycle anywhere in ``src/amiforge``: modules form a DAG (Tarjan's strongly
  connected components over an AST import graph; a deferred import inside a function
  counts, since it only hides the cycle from the interpreter, not from the design).
* Each package imports only the layers below it (:data:`MAY_NOT_IMPORT`), and the local
  cloud is imported only by the commands and the operation that start one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import amiforge
import amiforge.core

CORE = Path(amiforge.core.__file__).parent
SRC = Path(amiforge.__file__).parent.parent
FORBIDDEN = {"boto3", "botocore", "aiobotocore", "moto"}

# Packages of amiforge; a top-level module (amiforge.errors) is its own layer.
CORE_ONLY = {"core", "errors"}
ALL_LAYERS = {"core", "errors", "aws", "steps", "custom_resource", "handlers", "ops", "cli",
              "deploy", "localcloud", "amiforge"}
# For each layer, the layers it must not import (everything it may is the rest).
MAY_NOT_IMPORT: dict[str, set[str]] = {
    # The pure domain: nothing but itself and the errors.
    "core": ALL_LAYERS - CORE_ONLY,
    "errors": ALL_LAYERS - {"errors"},
    # The AWS layer: mechanics over core's types and the errors, nothing above.
    "aws": ALL_LAYERS - CORE_ONLY - {"aws"},
    # Lambda code: what runs in the stack never reaches the operator's side.
    "steps": {"ops", "cli", "handlers", "custom_resource", "deploy", "localcloud"},
    # The custom resource answers with the steps' own lookups.
    "custom_resource": {"ops", "cli", "handlers", "deploy", "localcloud"},
    # Entry points call steps (or the custom resource), never AWS or the operator's side.
    "handlers": {"aws", "ops", "cli", "deploy", "localcloud"},
    # The application layer returns data; it never renders.
    "ops": {"cli", "handlers"},
    # Commands parse and render: every use case goes through ops/.
    "cli": {"aws", "steps", "custom_resource", "handlers", "deploy"},
    "deploy": {"steps", "custom_resource", "ops", "cli", "handlers", "localcloud"},
}
# The only modules outside the local cloud that may import it (they start one).
LOCALCLOUD_IMPORTERS = {"amiforge.cli.local_cmd", "amiforge.cli.demo_cmd", "amiforge.ops.demo"}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def modules(root: Path) -> dict[str, Path]:
    """Every module under ``root`` (the directory holding the ``amiforge`` package) by
    dotted name; a package by its own name (``amiforge.core`` is its ``__init__``)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same tree it imports, wherever the import statement
    is (top level, function, ``TYPE_CHECKING``). Relative imports are resolved.
    ``from P import N`` depends on ``P`` (its ``__init__`` runs and is read) and, when
    ``P.N`` is a module, on ``P.N``."""
    known = modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            targets.add(source)
            targets.update(f"{source}.{alias.name}" for alias in node.names)
        graph[name] = {t for t in targets if t in known and t != name}
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def layer(module: str) -> str:
    """``amiforge.steps.launch`` -> ``steps``; ``amiforge.errors`` -> ``errors``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def layer_violations(graph: Mapping[str, set[str]]) -> list[str]:
    bad = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            if layer(target) in MAY_NOT_IMPORT.get(layer(source), set()):
                bad.append(f"{source} -> {target}")
            elif layer(target) == "localcloud" != layer(source) and \
                    source not in LOCALCLOUD_IMPORTERS:
                bad.append(f"{source} -> {target} (only {sorted(LOCALCLOUD_IMPORTERS)})")
    return bad


# --- the contract, on the real tree ---------------------------------------------------


def test_core_modules_exist() -> None:
    names = {p.stem for p in CORE.glob("*.py")}
    assert {"model", "recipes", "hashing", "naming", "userdata"} <= names


def test_core_imports_no_aws_sdk() -> None:
    offenders = {str(path.relative_to(CORE)): sorted(_imported_roots(path) & FORBIDDEN)
                 for path in sorted(CORE.rglob("*.py"))}
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def test_no_import_cycle_in_src() -> None:
    assert cycles(import_graph(SRC)) == []


def test_every_layer_imports_only_what_it_may() -> None:
    assert layer_violations(import_graph(SRC)) == []


def test_the_graph_covers_every_package() -> None:
    graph = import_graph(SRC)
    assert {layer(m) for m in graph} - {"amiforge"} <= ALL_LAYERS
    assert "amiforge.core.parse" in graph["amiforge.core.recipes"]


# --- the scanners see what they must --------------------------------------------------


def test_the_scanner_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import boto3.session\nfrom botocore.config import Config\n"
                      "def f():\n    import moto\n")
    assert _imported_roots(sample) >= {"boto3", "botocore", "moto"}


def _tree(tmp_path: Path, files: Mapping[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_a_cycle_through_relative_and_deferred_imports_is_found(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "amiforge/__init__.py": "",
        "amiforge/cli/__init__.py": "",
        "amiforge/cli/main.py": "def register():\n    from . import cmd\n",
        "amiforge/cli/cmd.py": "from .main import register\n",
        "amiforge/core/__init__.py": "",
        "amiforge/core/a.py": "from amiforge.core import b\n",
        "amiforge/core/b.py": "from typing import TYPE_CHECKING\n"
                              "if TYPE_CHECKING:\n    from amiforge.core.a import x\n",
        "amiforge/core/c.py": "import amiforge.core.a\n",
    })
    assert cycles(import_graph(root)) == [["amiforge.cli.cmd", "amiforge.cli.main"],
                                          ["amiforge.core.a", "amiforge.core.b"]]


def test_a_package_init_that_imports_its_importer_is_a_cycle(tmp_path: Path) -> None:
    # The shape of localcloud/__init__ re-exporting server, which does
    # `from amiforge.localcloud import events`.
    root = _tree(tmp_path, {
        "amiforge/__init__.py": "",
        "amiforge/lc/__init__.py": "from amiforge.lc.server import Cloud\n",
        "amiforge/lc/server.py": "from amiforge.lc import events\n",
        "amiforge/lc/events.py": "",
    })
    assert cycles(import_graph(root)) == [["amiforge.lc", "amiforge.lc.server"]]
    assert import_graph(root)["amiforge.lc.server"] == {"amiforge.lc", "amiforge.lc.events"}


def test_a_dag_has_no_cycle() -> None:
    assert cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_layer_rules_catch_an_upward_import() -> None:
    graph = {"amiforge.core.model": {"amiforge.aws.catalog", "amiforge.errors"},
             "amiforge.steps.launch": {"amiforge.ops.connect", "amiforge.core.model"},
             "amiforge.handlers.pipeline": {"amiforge.steps.launch"},
             "amiforge.aws.ec2": {"amiforge.localcloud.server"},
             "amiforge.ops.demo": {"amiforge.localcloud"}}
    assert layer_violations(graph) == [
        "amiforge.aws.ec2 -> amiforge.localcloud.server",
        "amiforge.core.model -> amiforge.aws.catalog",
        "amiforge.steps.launch -> amiforge.ops.connect",
    ]
