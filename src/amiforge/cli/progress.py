"""Live progress for builds: a rich table of each build's current step, or quiet lines.

Progress goes to stderr so that ``--output json`` on stdout stays machine-readable.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

STEP_ORDER = ["Resolve", "Launch", "AwaitStop", "Verify", "CreateImage", "AwaitImage",
              "Register", "Finish"]


def err_console() -> Console:
    return Console(file=sys.stderr, soft_wrap=True)


@contextmanager
def build_progress(builds: list[dict[str, Any]]) -> Iterator[Callable[..., None]]:
    """Yield an ``on_update(build, status, state)`` callback that redraws a live table."""
    console = err_console()
    rows: dict[str, list[str]] = {b["build_id"]: [b["recipe"], "STARTING", "-"] for b in builds}

    def table() -> Table:
        t = Table(title="amiforge builds", expand=False)
        for column in ("recipe", "status", "step"):
            t.add_column(column)
        for recipe, status, step in rows.values():
            colour = {"SUCCEEDED": "green", "FAILED": "red"}.get(status, "yellow")
            t.add_row(recipe, f"[{colour}]{status}[/]", step)
        return t

    if not console.is_terminal:
        def on_line(build: dict[str, Any], status: str, state: str | None) -> None:
            console.print(f"{build['recipe']}: {status} {state or ''}".rstrip(),
                          markup=False, highlight=False)
        yield on_line
        return
    with Live(table(), console=console, refresh_per_second=4, transient=False) as live:
        def on_update(build: dict[str, Any], status: str, state: str | None) -> None:
            rows[build["build_id"]][1:] = [status, state or "-"]
            live.update(table())
        yield on_update


def line_progress() -> Callable[[str], None]:
    console = err_console()
    return lambda message: console.print(message, markup=False, highlight=False)
