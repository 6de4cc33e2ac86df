"""Typed reads from untrusted mappings, collecting Problems instead of raising.

Recipe validation must report every problem in every file at once, and never crash on
input of the wrong shape (a list where a mapping belongs, a number where a string does).
:class:`Fields` reads one value at a time; each read either returns a usable value or
records a :class:`~amiforge.errors.Problem` naming the file, the dotted field path and
the bad value, and returns a default so validation can carry on.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any

from amiforge.errors import Problem

# A rule takes a value and returns None (fine) or a message (see amiforge.core.rules).
Rule = Callable[[str], str | None]
_ABSENT = object()


def describe(value: Any) -> str:
    """A value as a message shows it: its type and, if short, the value itself."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


class Fields:
    """Reads fields of one recipe, appending a Problem per bad value to ``problems``."""

    def __init__(self, where: str, problems: list[Problem]) -> None:
        self.where = where
        self.problems = problems

    def add(self, field: str | None, message: str) -> None:
        self.problems.append(Problem(self.where, field or None, message))

    def section(self, parent: dict[str, Any], key: str, prefix: str = "", *,
                required: bool = False, example: str = "") -> dict[str, Any]:
        """A nested mapping; {} when absent (or refused, after recording why)."""
        value = parent.get(key)
        path = join(prefix, key)
        if value is None:
            if required:
                self.add(path, f"is required{example}")
            return {}
        if not isinstance(value, dict):
            self.add(path, f"must be a mapping of fields, got {describe(value)}{example}")
            return {}
        return value

    def known_keys(self, mapping: dict[Any, Any], prefix: str, allowed: Sequence[str]) -> None:
        """Refuse unknown keys, suggesting the nearest known one (typos are the usual cause)."""
        for key in mapping:
            if key in allowed:
                continue
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            where = prefix or "a recipe"
            hint = (f"did you mean {close[0]!r}?" if close
                    else f"{where} takes: {', '.join(allowed)}")
            self.add(join(prefix, str(key)), f"unknown key; {hint}")

    def string(self, parent: dict[str, Any], key: str, prefix: str = "", *,
               required: bool = False, rule: Rule | None = None,
               default: str | None = None, max_len: int | None = None) -> str | None:
        value = parent.get(key)
        path = join(prefix, key)
        if value is None:
            if required:
                self.add(path, "is required")
            return default
        if not isinstance(value, str):
            self.add(path, f"must be a string, got {describe(value)}")
            return default
        if max_len is not None and len(value) > max_len:
            self.add(path, f"is {len(value)} characters; at most {max_len} are allowed")
            return default
        if rule is not None and (message := rule(value)):
            self.add(path, message)
            return default
        return value

    def integer(self, parent: dict[str, Any], key: str, prefix: str, *, default: int | None,
                low: int, high: int | None = None, null_means_none: bool = False
                ) -> int | None:
        """An integer in [low, high]. With ``null_means_none`` an explicit null is kept
        (it means "no limit"), while an absent key still takes ``default``."""
        value = parent.get(key, _ABSENT)
        path = join(prefix, key)
        if value is _ABSENT or (value is None and not null_means_none):
            return default
        if value is None:
            return None
        # bool is an int in Python; `retries: yes` is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"must be a whole number, got {describe(value)}")
            return default
        if value < low or (high is not None and value > high):
            bounds = (f"from {low} to {high}" if high is not None
                      else f"of at least {low}")
            self.add(path, f"is {value}; use a whole number {bounds}")
            return default
        return value

    def boolean(self, parent: dict[str, Any], key: str, prefix: str) -> bool | None:
        """true or false, or None when absent or null. Only a YAML boolean counts: a
        quoted "yes" or "true" is a string, and guessing what it meant is how a builder
        ends up on the internet by mistake."""
        value = parent.get(key)
        if value is None or isinstance(value, bool):
            return value
        self.add(join(prefix, key), f"must be true or false (unquoted), got {describe(value)}")
        return None

    def string_list(self, parent: dict[str, Any], key: str, prefix: str, *,
                    rule: Rule | None = None, accept_digits: int | None = None,
                    unique: bool = True) -> tuple[str, ...] | None:
        """A list of strings; None when absent. ``accept_digits``: also take YAML numbers of
        exactly that many digits (an unquoted account id), as strings."""
        value = parent.get(key)
        path = join(prefix, key)
        if value is None:
            return None
        if not isinstance(value, list):
            self.add(path, f"must be a list, got {describe(value)}; write [{_bare(value)}]")
            return ()
        items: list[str] = []
        for i, item in enumerate(value):
            item_path = f"{path}[{i}]"
            if (accept_digits and isinstance(item, int) and not isinstance(item, bool)
                    and len(str(item)) == accept_digits):
                item = str(item)
            if not isinstance(item, str):
                self.add(item_path, f"must be a string, got {describe(item)}"
                         + ("; quote account ids, like '012345678901'" if accept_digits else ""))
                continue
            if rule is not None and (message := rule(item)):
                self.add(item_path, message)
                continue
            if unique and item in items:
                self.add(item_path, f"{item!r} is listed twice")
                continue
            items.append(item)
        return tuple(items)

    def string_map(self, parent: dict[str, Any], key: str, prefix: str
                   ) -> dict[str, str]:
        value = parent.get(key)
        path = join(prefix, key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(path, f"must be a mapping of key: value, got {describe(value)}")
            return {}
        result: dict[str, str] = {}
        for k, v in value.items():
            if not isinstance(k, str) or not isinstance(v, str):
                self.add(path, f"tag {describe(k)} has {describe(v)}; tag keys and values "
                         "must be strings: quote numbers and true/false, like '42'")
                continue
            result[k] = v
        return result


def _bare(value: Any) -> str:
    return value if isinstance(value, str) else "..."
