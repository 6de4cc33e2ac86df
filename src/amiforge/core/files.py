"""Reading the files a recipe names, as untrusted input.

Recipes come from pull requests, so a path in one is an attacker's choice: ``../../etc/
passwd``, a symlink to ``~/.aws/credentials``, ``/dev/zero`` (reads forever), a FIFO
(blocks forever). Whatever the publishing machine reads is uploaded, run on a builder
and baked into an image, so every read goes through :func:`read_bounded`:

1. the path is resolved (symlinks followed) and must stay inside the recipe directory;
2. ``os.stat`` must say "regular file" before anything is opened (a FIFO or device is
   refused without touching it), and its size must be within the bound;
3. the file is opened with ``O_NONBLOCK`` (a file swapped for a FIFO after the stat
   still cannot block the open), re-checked with ``fstat`` on the open descriptor, and
   read with the bound, so a file that grows meanwhile is still cut off.

Each refusal is an :class:`UnsafeFile` whose message names the path as written and says
what to do; the callers attach the file and field.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# Generous on purpose: the real limits (16 KB wrapped user data, 51,200-byte build
# templates) are checked later with their own messages. This one only stops a read.
READ_LIMIT = 1024 * 1024


class UnsafeFile(LookupError):
    """A referenced file that cannot be read safely.

    ``args[0]`` is the whole message (it names the path); ``reason`` is the same without
    the path, for callers that already name the file.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


def inside(root: Path, candidate: Path) -> bool:
    """Whether ``candidate``, symlinks resolved, lies within ``root`` (also resolved)."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(candidate)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_bounded(root: Path, relative: str, *, limit: int = READ_LIMIT) -> bytes:
    """The bytes of ``relative`` (a path written in a recipe) under ``root``.

    Raises UnsafeFile when it resolves outside ``root``, is missing, is not a regular
    file, or is larger than ``limit`` bytes.
    """
    shown = Path(root) / relative
    if "\x00" in relative:  # no OS call takes it; the parser refuses it first
        raise UnsafeFile(f"{relative!r} contains a NUL character", "contains a NUL character")
    if not inside(root, shown):
        reason = (f"resolves (after following symlinks) outside the recipe directory "
                  f"{root}; a recipe may only use files inside its own directory: copy the "
                  "file there")
        raise UnsafeFile(f"{relative} {reason}", reason)
    real = os.path.realpath(shown)
    try:
        info = os.stat(real)
    except FileNotFoundError:
        raise UnsafeFile(f"file not found: looked for {shown}", "does not exist") from None
    except OSError as err:
        raise _unreadable(shown, err) from None
    _check(shown, info, limit)
    try:
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise _unreadable(shown, err) from None
    try:
        _check(shown, os.fstat(fd), limit)  # the file may have been swapped since the stat
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as err:
        raise _unreadable(shown, err) from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise _too_big(shown, f"more than {limit}", limit)
    return data


def _check(shown: Path, info: os.stat_result, limit: int) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise _unsafe(shown, "is a directory; name the script file")
    if not stat.S_ISREG(info.st_mode):
        raise _unsafe(shown, f"is {_kind(info.st_mode)}, not a regular file; name an ordinary "
                      "file inside the recipe directory")
    if info.st_size > limit:
        raise _too_big(shown, str(info.st_size), limit)


def _unreadable(shown: Path, err: OSError) -> UnsafeFile:
    reason = f"cannot be read: {err.strerror or err}"
    return UnsafeFile(f"cannot read {shown}: {err.strerror or err}", reason)


def _unsafe(shown: Path, reason: str) -> UnsafeFile:
    return UnsafeFile(f"{shown} {reason}", reason)


def _too_big(shown: Path, size: str, limit: int) -> UnsafeFile:
    return _unsafe(shown, f"is {size} bytes, over the {limit}-byte limit on files a recipe "
                   "reads; keep scripts and templates small and fetch bulk content at build "
                   "time")
