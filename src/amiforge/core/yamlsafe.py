"""Loading untrusted YAML without a RecursionError.

PyYAML's composer recurses once per nesting level, so a recipe of a few thousand ``[``
ends in a RecursionError traceback. Its event parser keeps an explicit stack, so the
depth is measured from the events first and anything deeper than any recipe or build
template needs is refused as a plain YAMLError, which the callers already report.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_DEPTH = 64


def too_deep(text: str) -> bool:
    """Whether the collections in a YAML text nest deeper than :data:`MAX_DEPTH`.

    Read from the parser's event stream, which keeps an explicit stack, and stopped at
    the first level too many: PyYAML's scanner slows down with every open level, so
    reading a hostile document to its end would take seconds.
    """
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return False


def load_yaml(text: str, loader: type[yaml.SafeLoader]) -> Any:
    """``yaml.load`` that refuses nesting deeper than :data:`MAX_DEPTH` with a YAMLError."""
    if too_deep(text):
        raise yaml.YAMLError(f"it nests more than {MAX_DEPTH} levels deep; nest less")
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - loader is a SafeLoader subclass
    except RecursionError:
        raise yaml.YAMLError("it nests too deeply to read") from None
