"""Stopping the local cloud leaves nothing of amiforge in moto.

Run in a fresh interpreter: the tests' shared local cloud keeps the fills installed in
this one. The child starts a LocalCloud on 127.0.0.1, stops it, and reports two
independent checks: every registered target holds again the very object it held before
start, and no attribute of a class or module the fills touch is amiforge's code.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

CHILD = r'''
import json, sys, types
from pathlib import Path

import amiforge
from amiforge.localcloud.server import LocalCloud
from amiforge.localcloud.fills import MISSING, resolve_owner
from amiforge.localcloud.fills.services import REGISTRY

AMIFORGE = str(Path(amiforge.__file__).parent)


def amiforge_code(value):
    """Is ``value`` (a function, or one behind a property/classmethod) amiforge's?"""
    for inner in (value, getattr(value, "__func__", None), getattr(value, "fget", None)):
        if inner is None:
            continue
        if str(getattr(inner, "__module__", "") or "").startswith("amiforge"):
            return True
        code = getattr(inner, "__code__", None)  # functools.wraps copies __module__
        if code is not None and code.co_filename.startswith(AMIFORGE):
            return True
    return False


def scan():
    owners = {id(o): o for o in (resolve_owner(f.owner) for f in REGISTRY.fills)}
    return sorted(f"{getattr(o, '__module__', '') if not isinstance(o, types.ModuleType) else ''}"
                  f"{getattr(o, '__qualname__', getattr(o, '__name__', '?'))}.{name}"
                  for o in owners.values() for name, value in list(vars(o).items())
                  if amiforge_code(value))


def held():
    return {f.target: vars(resolve_owner(f.owner)).get(f.attribute, MISSING)
            for f in REGISTRY.fills}


mismatches = REGISTRY.mismatches()
before = held()
scanned_before = scan()
cloud = LocalCloud(port=0).start()
running = held()
replaced = sorted(t for t in before if running[t] is not before[t])
scanned_running = scan()
cloud.stop()
after = held()
print(json.dumps({
    "fills": len(REGISTRY.fills),
    "mismatches": mismatches,
    "scanned_before": scanned_before,
    "replaced_while_running": len(replaced),
    "scanned_while_running": len(scanned_running),
    "not_restored": sorted(t for t in before if after[t] is not before[t]),
    "scanned_after": scan(),
    "installed_after": REGISTRY.installed,
}))
'''


def run_child(script: str = CHILD) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_stop_leaves_no_moto_attribute_patched() -> None:
    report = run_child()
    assert report["mismatches"] == {}  # every fingerprint matches the pinned moto
    assert report["scanned_before"] == []
    # While it runs every target is replaced, and the scan sees amiforge's code: both
    # checks below would notice a fill left behind.
    assert report["replaced_while_running"] == report["fills"]
    # (all but stepfunctions.one-backend, whose replacement is moto's own parser backends)
    assert report["scanned_while_running"] == report["fills"] - 1
    assert report["not_restored"] == []
    assert report["scanned_after"] == []
    assert report["installed_after"] is False


REFUSED = r'''
import dataclasses, json

from amiforge.localcloud.server import LocalCloud
from amiforge.localcloud.fills import MISSING, MotoMismatch, resolve_owner
from amiforge.localcloud.fills.services import REGISTRY

# As if moto's DynamoDBBackend.update_item had changed since the fill was written.
REGISTRY.fills = tuple(
    dataclasses.replace(f, fingerprint="000000000000")
    if f.name == "dynamodb.update-item-atomic" else f for f in REGISTRY.fills)
before = {f.target: vars(resolve_owner(f.owner)).get(f.attribute, MISSING)
          for f in REGISTRY.fills}
try:
    LocalCloud(port=0).start()
    error = None
except MotoMismatch as err:
    error = str(err)
after = {f.target: vars(resolve_owner(f.owner)).get(f.attribute, MISSING)
         for f in REGISTRY.fills}
print(json.dumps({"error": error, "changed": sorted(t for t in before
                                                    if after[t] is not before[t])}))
'''


def test_a_fill_that_does_not_fit_moto_refuses_the_start_in_one_line() -> None:
    report = run_child(REFUSED)
    assert report["error"].startswith(
        "the local cloud's fill 'dynamodb.update-item-atomic' does not fit "
        "moto.dynamodb.models:DynamoDBBackend.update_item: its code changed (fingerprint ")
    assert "recorded 000000000000" in report["error"]
    assert "\n" not in report["error"]
    assert report["changed"] == []  # refused before anything was replaced
