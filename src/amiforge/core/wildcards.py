"""EC2's filter wildcards, matched here as EC2 matches them.

A DescribeImages filter value may use ``*`` (zero or more characters) and ``?`` (exactly
one); a backslash makes the next character literal (``\\*`` is a star, ``\\\\`` a
backslash). Values are case-sensitive. Detection asks EC2 once for several bases' name
patterns (the values of one filter are ORed) and must then tell which pattern each
returned image answered: this is that test, so the split agrees with what EC2 would have
answered for each pattern alone.
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            # A trailing backslash has nothing to escape: it stands for itself.
            parts.append(re.escape(next(chars, "\\")))
        elif char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def wildcard_match(pattern: str, value: str) -> bool:
    """True if ``value`` (an image name) matches the EC2 filter value ``pattern``."""
    return _compiled(pattern).fullmatch(value) is not None
