"""Commands return a :class:`Result`; this module alone prints it, as text or JSON.

In a terminal, tables fit the window (long cells fold). Into a pipe or a CI log, they
print at full width and are never wrapped or cut, so ``grep`` sees whole ids.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass
class Result:
    """What a command produced: JSON-safe ``data`` plus how to show it as text."""

    data: Any
    title: str | None = None
    columns: Sequence[str] = ()
    rows: Sequence[Sequence[Any]] = ()
    lines: Sequence[str] = field(default_factory=list)
    exit_code: int = 0


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=_default)


# Wide enough for any row: rich pads a table only to what its cells need.
PIPE_WIDTH = 100_000


def console_for_stdout() -> Console:
    """A terminal's console, or one that never wraps when stdout is a pipe or file."""
    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console = Console(soft_wrap=True, width=PIPE_WIDTH, no_color=True,
                          highlight=False)
    return console


def render(result: Result, output: str, console: Console | None = None) -> None:
    console = console or console_for_stdout()
    if output == "json":
        # Plain print: JSON must never be wrapped or styled.
        print(to_json(result.data))
        return
    if result.columns:
        table = Table(title=result.title, show_lines=False)
        wrap = console.is_terminal
        for column in result.columns:
            table.add_column(column, overflow="fold" if wrap else "ignore", no_wrap=not wrap)
        for row in result.rows:
            table.add_row(*("" if cell is None else str(cell) for cell in row))
        console.print(table)
    elif result.title:
        console.print(result.title)
    for line in result.lines:
        console.print(line, markup=False, highlight=False)
