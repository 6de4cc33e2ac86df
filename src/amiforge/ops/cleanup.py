"""``amiforge prune`` and ``amiforge sweep``: retention and leftovers, run from a laptop.

Both run the same step code as the stack's scheduled Prune and Sweep functions
(``steps/prune.py``, ``steps/sweep.py``) against the stack's tables, with the caller's
credentials and the stack's own timing (:func:`amiforge.ops.connect.connect`). A dry run
returns the plan and changes nothing; a real run returns the same rows with what was done.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from amiforge.errors import NotFound
from amiforge.steps.env import StepEnv
from amiforge.steps.prune import prune as run_prune
from amiforge.steps.sweep import sweep as run_sweep


def prune(env: StepEnv, recipes: Sequence[str], *, dry_run: bool) -> dict[str, Any]:
    """Apply retention to ``recipes`` (every published recipe if none); every name is
    checked first, so a typo prunes nothing."""
    for name in recipes:
        if env.store.current(name) is None:
            raise NotFound(f"recipe {name!r} is not published",
                           hint="check the name with `amiforge status`")
    return run_prune({"dry_run": dry_run, "recipes": list(recipes)}, env)


def sweep(env: StepEnv, *, dry_run: bool) -> dict[str, Any]:
    """Remove what dead or finished builds left behind; mark dead builds FAILED."""
    return run_sweep({"dry_run": dry_run}, env)
