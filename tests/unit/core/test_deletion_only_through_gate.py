"""Only the deletion gate's executor (aws/deletion.py) deregisters images or deletes
snapshots: every other path must go through the gate (core/deletion.py) to reach it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import amiforge
from amiforge.aws import deletion
from amiforge.core.deletion import DELETE, KEEP, Verdict

SRC = Path(amiforge.__file__).parent
EXECUTOR = SRC / "aws" / "deletion.py"
REMOVALS = {"deregister_image", "delete_snapshot", "DeregisterImage", "DeleteSnapshot"}
# The emulator plays AWS; it is never imported by Lambda code.
EMULATOR = SRC / "localcloud"


def removal_calls(path: Path, root: Path = SRC) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            # client.get_paginator("...") / getattr(client, "delete_snapshot") forms too
            for arg in node.args:
                if isinstance(arg, ast.Constant) and arg.value in REMOVALS:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {arg.value}")
        if name in REMOVALS:
            found.append(f"{path.relative_to(root)}:{node.lineno} {name}")
    return found


def test_no_module_but_the_executor_removes_images_or_snapshots() -> None:
    offenders = [call for path in sorted(SRC.rglob("*.py"))
                 if path != EXECUTOR and EMULATOR not in path.parents
                 for call in removal_calls(path)]
    assert offenders == []


class Recorder:
    """Records any call; the executor must make none without a delete verdict."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> object:
        return lambda **kwargs: self.calls.append(name)


@pytest.mark.parametrize("verdict", [
    Verdict(KEEP, "in use: instance i-1", "ami-1", "us-east-1"),
    Verdict(DELETE, "build failed", "ami-2", "us-east-1"),   # approved for another image
    Verdict(DELETE, "build failed", "", "us-east-1"),
])
def test_the_executor_refuses_without_a_delete_verdict_for_that_resource(
        verdict: Verdict) -> None:
    ec2 = Recorder()
    with pytest.raises(deletion.NotApproved):
        deletion.deregister_approved(ec2, "ami-1", verdict)
    with pytest.raises(deletion.NotApproved):
        deletion.delete_snapshot_approved(ec2, "ami-1", verdict)
    assert ec2.calls == []


def test_the_executor_removes_what_the_gate_approved() -> None:
    ec2 = Recorder()
    deletion.deregister_approved(ec2, "ami-1", Verdict(DELETE, "x", "ami-1"))
    assert deletion.delete_snapshot_approved(ec2, "snap-1", Verdict(DELETE, "x", "snap-1"))
    assert ec2.calls == ["deregister_image", "delete_snapshot"]


def test_the_check_finds_a_direct_call(tmp_path: Path) -> None:
    bad = tmp_path / "probe.py"
    bad.write_text("def f(ec2):\n    ec2.deregister_image(ImageId='ami-1')\n"
                   "    call(ec2, 'DeleteSnapshot')\n")
    assert removal_calls(bad, tmp_path) == ["probe.py:2 deregister_image",
                                            "probe.py:3 DeleteSnapshot"]
