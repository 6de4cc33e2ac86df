"""Masking secret-looking values in build logs before anyone stores or sends them.

A build script's output reaches the console, and its tail is stored in the catalog and
sent in failure notifications, where many more people can read it than could read the
script's secrets. :func:`mask` replaces what looks like a secret with ``****``:

- AWS access key ids (``AKIA``/``ASIA``/... and 16 more characters): the four-letter
  prefix is kept, so a reader still sees that a key was printed;
- secret access keys: a 40-character value after ``aws_secret_access_key`` (any case,
  ``=`` or ``:``), and any 40-character base64-looking word next to a masked key id;
- assignments whose name says secret: ``password=``, ``passwd:``, ``secret=``,
  ``token=``, ``api_key=``, ``private_key=``, ``credentials=`` and names containing them
  (``DB_PASSWORD=``, ``github_token:``), quoted or not; and ``Bearer <token>``;
- PEM private-key blocks, including a block the tail cut in two (only its END line
  survived, or its END line was cut off).

It is pattern matching, so it over-masks a little (``token: none`` too) and cannot catch
a secret printed bare: scripts should still not print secrets.
"""

from __future__ import annotations

import re

MASK = "****"

_KEY_ID = re.compile(r"\b(AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}\b")
_SECRET_KEY = re.compile(
    r"(?i)(aws_?secret_?access_?key|secret_?access_?key)([\"']?[ \t]*[=:][ \t]*[\"']?)"
    r"[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])")
_BARE_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{39}[A-Za-z0-9/+=](?![A-Za-z0-9/+=])")
_NAMES = r"(?:password|passwd|pwd|secret|token|api[_-]?key|private[_-]?key|credentials?)"
_ASSIGNMENT = re.compile(
    rf"(?i)\b([A-Za-z0-9_.-]*{_NAMES}[A-Za-z0-9_.-]*[\"']?)([ \t]*[=:][ \t]*)"
    r"(\"[^\"\n]*\"|'[^'\n]*'|[^\s\"',;&]+)")
_BEARER = re.compile(r"(?i)\b(bearer[ \t]+)[A-Za-z0-9._~+/=-]{8,}")
_PEM_BLOCK = re.compile(
    r"(-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----)(.*?)(-----END \2-----|\Z)", re.S)
_PEM_END = re.compile(r"^(.*?)(-----END [A-Z0-9 ]*PRIVATE KEY-----)", re.S)


def mask(text: str) -> str:
    """``text`` with secret-looking values replaced by :data:`MASK` (idempotent)."""
    text = _mask_pem(text)
    text = _SECRET_KEY.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
    text = _mask_key_ids(text)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    return _ASSIGNMENT.sub(_mask_assignment, text)


def _mask_pem(text: str) -> str:
    # A tail that starts inside a block shows only its END line: mask what precedes it.
    end = _PEM_END.match(text)
    if end and "-----BEGIN " not in end.group(1):
        text = MASK + "\n" + end.group(2) + text[end.end():]
    return _PEM_BLOCK.sub(lambda m: m.group(1) + "\n" + MASK + "\n" + m.group(4), text)


def _mask_key_ids(text: str) -> str:
    """Key ids keep their prefix; a secret key on the same line as one is masked too."""
    lines = []
    for line in text.split("\n"):
        if _KEY_ID.search(line):
            line = _KEY_ID.sub(lambda m: m.group(1) + MASK, line)
            line = _BARE_SECRET.sub(MASK, line)
        lines.append(line)
    return "\n".join(lines)


def _mask_assignment(found: re.Match[str]) -> str:
    value = found.group(3)
    if value.strip("\"'") == MASK:
        return found.group(0)
    quote = value[0] if value[:1] in ("'", '"') else ""
    return found.group(1) + found.group(2) + quote + MASK + quote
