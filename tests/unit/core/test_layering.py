"""The core stays pure: no module under amiforge/core imports boto3 or botocore."""

from __future__ import annotations

import ast
from pathlib import Path

import amiforge.core

CORE = Path(amiforge.core.__file__).parent
FORBIDDEN = {"boto3", "botocore", "aiobotocore", "moto"}


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_modules_exist() -> None:
    names = {p.stem for p in CORE.glob("*.py")}
    assert {"model", "recipes", "hashing", "naming", "userdata"} <= names


def test_core_imports_no_aws_sdk() -> None:
    offenders = {str(path.relative_to(CORE)): sorted(_imported_roots(path) & FORBIDDEN)
                 for path in sorted(CORE.rglob("*.py"))}
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def test_core_imports_nothing_from_the_outer_layers() -> None:
    # core is the bottom layer: aws/, steps/, handlers/, cli/ build on it, never the reverse.
    outer = ("amiforge.aws", "amiforge.steps", "amiforge.handlers", "amiforge.cli",
             "amiforge.deploy", "amiforge.localcloud", "amiforge.ops")
    bad = []
    for path in sorted(CORE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith(outer):
                bad.append(f"{path.name}: {node.module}")
            if isinstance(node, ast.Import):
                bad.extend(f"{path.name}: {a.name}" for a in node.names
                           if a.name.startswith(outer))
    assert bad == []


def test_the_scanner_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import boto3.session\nfrom botocore.config import Config\n"
                      "def f():\n    import moto\n")
    assert _imported_roots(sample) >= {"boto3", "botocore", "moto"}
