"""`make demo`'s command, run as a user runs it: the installed `amiforge` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "recipes"


def test_demo_builds_every_example_and_shows_the_catalog(shape_problems: Any) -> None:
    amiforge = Path(sys.executable).with_name("amiforge")
    assert amiforge.exists(), "the console script is installed with the package"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_")}  # the demo brings its own cloud and credentials
    proc = subprocess.run([str(amiforge), "--output", "json", "demo"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    names = {p.stem for p in EXAMPLES.glob("*.yaml")}
    assert summary["ok"] is True
    assert {b["recipe"]: b["status"] for b in summary["builds"]} == dict.fromkeys(
        names, "AVAILABLE")
    catalog = {b["recipe"]: b for b in summary["catalog"]}
    assert set(catalog) == names
    assert all(b["image_id"].startswith("ami-") for b in catalog.values())
    assert "Traceback" not in proc.stderr
    assert shape_problems("demo", summary) == []  # the shape docs/cli.md documents
