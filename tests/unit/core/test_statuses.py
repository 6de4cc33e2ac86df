"""The build-status legend is complete: every status the code writes has a meaning, the
docs list exactly the legend, and "over" means the same to the sweeper."""

from __future__ import annotations

import re
from pathlib import Path

from amiforge.aws import catalog
from amiforge.core import statuses
from amiforge.core.sweep_judge import OVER_STATUSES

ARCHITECTURE = Path(__file__).resolve().parents[3] / "docs" / "architecture.md"


def test_every_status_the_catalog_writes_has_a_meaning() -> None:
    written = {catalog.BUILDING, catalog.AVAILABLE, catalog.FAILED, catalog.PRUNED,
               catalog.CANCELLED}
    assert written <= set(statuses.MEANINGS)
    assert all(statuses.MEANINGS[s].strip() for s in statuses.MEANINGS)


def test_the_docs_table_is_the_legend() -> None:
    text = ARCHITECTURE.read_text()
    section = text[text.index("### Build statuses"):text.index("## Triggers")]
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| (.+?) \|$", section, re.MULTILINE))
    assert rows == statuses.MEANINGS


def test_the_sweeper_counts_the_same_statuses_as_over() -> None:
    assert frozenset(OVER_STATUSES) == statuses.OVER
    assert {"BUILDING", "STARTING"}.isdisjoint(statuses.OVER)

