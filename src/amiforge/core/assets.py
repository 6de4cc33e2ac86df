"""Recipe assets (``build.files``) and the builder's instance profile (``build.instance_profile``).

``build.files`` lists directories beside the recipe whose files the build needs (config
files, packages, a larger setup script). They never travel in the user data (EC2's 16 KB
limit) nor in the recipe store's item (DynamoDB's 400 KB): instead

1. loading the recipe walks each directory (:func:`walk_assets`) with the same distrust
   as any recipe file (:mod:`amiforge.core.files`): every path must stay inside the
   recipe directory after symlinks are followed, only regular files are taken, and the
   sizes and counts are bounded. Each file becomes an :class:`Asset` - its path as it
   lies beside the recipe, its sha256 and size;
2. the manifest of assets (path -> sha256, size) is part of the recipe document, so it is
   hashed with it: changing one byte of one file changes the recipe hash, and detection
   rebuilds. The stack rebuilds the recipe from the published document with the
   manifest alone (:func:`document_lister`), and gets the same hash;
3. ``publish`` uploads each file to the stack's artifact bucket under its content hash
   (:func:`object_key`), skipping those already there;
4. the Launch step presigns a short-lived GET URL per file, writes the list
   (:func:`builder_manifest`) as one object and gives the builder's wrapper a presigned
   URL to that list (:mod:`amiforge.core.userdata`). The wrapper fetches each file,
   checks its sha256 and puts it under ``$AMIFORGE_FILES`` before the script runs. The
   builder needs no instance profile to do this.

Pure apart from :func:`walk_assets`, which reads the recipe's directory (as
:mod:`amiforge.core.recipes` does).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from amiforge.core import rules
from amiforge.core.files import UnsafeFile, inside
from amiforge.core.schema import Fields, describe

# Bounds on what one recipe may ship. A build that needs more should install packages
# from a repository; these only stop a mistake (a build directory full of artefacts, a
# disk image) from being hashed, uploaded and downloaded by every build.
MAX_FILE_BYTES = 100 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
MAX_FILES = 500
MAX_DIRECTORIES = 20
PATH_MAX = 1024
# Where uploaded files live in the artifact bucket, and the per-launch lists of URLs.
OBJECT_PREFIX = "assets/"
LAUNCH_PREFIX = "launches/"
# How long the builder's URLs work: a builder fetches its files in its first minutes.
URL_SECONDS = 3600

# Instance profile names, as IAM allows them.
_PROFILE_NAME = re.compile(r"[\w+=,.@-]{1,128}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ABSOLUTE = re.compile(r"^(/|\\|[A-Za-z]:)")


@dataclass(frozen=True)
class Asset:
    """One file of ``build.files``: its path beside the recipe (POSIX), sha256 and size."""

    path: str
    sha256: str
    size: int


# Lists the assets under one directory named in build.files (path as written); raises
# LookupError (UnsafeFile) with a message naming what is wrong.
AssetLister = Callable[[str], tuple[Asset, ...]]


def object_key(sha256: str) -> str:
    """The artifact bucket key of a file's content (same content, same key: one upload)."""
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"{sha256!r} is not a sha256 hex digest")
    return f"{OBJECT_PREFIX}sha256/{sha256}"


def launch_key(build_id: str, attempt: int) -> str:
    """The key of one launch's list of presigned URLs."""
    return f"{LAUNCH_PREFIX}{build_id}/{attempt}.txt"


def manifest(assets: Sequence[Asset]) -> dict[str, dict[str, Any]] | None:
    """The assets as the recipe document carries (and hashes) them; None without any,
    so recipes without build.files keep the hash they always had."""
    if not assets:
        return None
    return {a.path: {"sha256": a.sha256, "size": a.size}
            for a in sorted(assets, key=lambda a: a.path)}


def builder_manifest(assets: Sequence[Asset], urls: Mapping[str, str]) -> str:
    """What the wrapper reads: one line per file, ``SHA256 SIZE URL PATH`` (the path is
    last, so it may hold spaces; validation refused control characters in it)."""
    return "".join(f"{a.sha256} {a.size} {urls[a.path]} {a.path}\n"
                   for a in sorted(assets, key=lambda a: a.path))


def check_instance_profile(name: str, allowed: Sequence[str]) -> str | None:
    """Why the stack refuses ``name`` as a builder's instance profile, or None."""
    if name in allowed:
        return None
    listed = (f"it allows only {', '.join(allowed)}" if allowed
              else "it allows none (AllowedInstanceProfiles is empty)")
    return (f"instance profile {name!r} is not in the stack's AllowedInstanceProfiles: "
            f"{listed}; redeploy with `amiforge deploy -p AllowedInstanceProfiles=...` "
            "naming it, or remove build.instance_profile")


def comma_list(text: str | None) -> tuple[str, ...]:
    """A stack parameter's comma list (AllowedInstanceProfiles, DefaultSecurityGroupIds)."""
    return tuple(p.strip() for p in (text or "").split(",") if p.strip())


def _check_profile_name(value: str) -> str | None:
    if _PROFILE_NAME.fullmatch(value):
        return None
    return ("is not an instance profile name (letters, digits and +=,.@_- only, at most "
            "128; the name, not the ARN), like amiforge-builder")


def _check_directory(value: str) -> str | None:
    found = rules.CONTROL.search(value)
    if found is not None:
        return f"contains the control character {found.group()!r}; name a plain directory"
    if _ABSOLUTE.match(value):
        return (f"{value!r} is an absolute path; write it relative to the recipe file "
                "(like files) so the recipe hashes the same anywhere")
    if not _normal(value):
        return (f"{value!r} is the recipe directory itself; name a subdirectory beside "
                "the recipe (like files) that holds only what the build needs")
    if ".." in PurePosixPath(value.replace("\\", "/")).parts:
        return (f"{value!r} leaves the recipe directory ('..'); a recipe may only ship "
                "files from inside its own directory")
    return None


def parse_build_files(fields: Fields, build: dict[str, Any], list_assets: AssetLister
                      ) -> tuple[tuple[str, ...], tuple[Asset, ...]]:
    """``build.files``: the directories as written, and every file under them."""
    if build.get("files") is None:
        return (), ()
    dirs = fields.string_list(build, "files", "build", rule=_check_directory) or ()
    if not dirs:
        if build.get("files") == []:
            fields.add("build.files", "is empty; list directories beside the recipe (like "
                       "[files]), or leave it out")
        return (), ()
    if len(dirs) > MAX_DIRECTORIES:
        fields.add("build.files", f"lists {len(dirs)} directories, over the limit of "
                   f"{MAX_DIRECTORIES}; gather the files into fewer directories")
        return (), ()
    found: dict[str, Asset] = {}
    for directory in dirs:
        try:
            assets = list_assets(directory)
        except LookupError as err:
            fields.add("build.files", f"{directory!r}: {err.args[0]}")
            continue
        if not assets:
            fields.add("build.files", f"{directory!r} holds no files; put the build's files "
                       "in it or remove it from the list")
        found.update((a.path, a) for a in assets)
    total = sum(a.size for a in found.values())
    if len(found) > MAX_FILES:
        fields.add("build.files", f"{', '.join(dirs)} hold {len(found)} files, over the limit "
                   f"of {MAX_FILES}; pack them into an archive the script unpacks")
    elif total > MAX_TOTAL_BYTES:
        fields.add("build.files", f"{', '.join(dirs)} hold {total} bytes, over the limit of "
                   f"{MAX_TOTAL_BYTES}; install large content from a package repository")
    return dirs, tuple(sorted(found.values(), key=lambda a: a.path))


def parse_instance_profile(fields: Fields, build: dict[str, Any]) -> str | None:
    return fields.string(build, "instance_profile", "build", rule=_check_profile_name)


def document_lister(raw: Any) -> tuple[AssetLister, str | None]:
    """An AssetLister over a published document's ``assets`` manifest, and what is wrong
    with that manifest (None if nothing)."""
    entries: dict[str, Asset] = {}
    problem: str | None = None
    if raw is not None and not isinstance(raw, dict):
        problem = f"must be a mapping of path: {{sha256, size}}, got {describe(raw)}"
        raw = {}
    for path, entry in (raw or {}).items():
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        size = entry.get("size") if isinstance(entry, dict) else None
        if (not isinstance(digest, str) or not _SHA256.fullmatch(digest)
                or not isinstance(size, int) or isinstance(size, bool) or size < 0
                or _path_problem(str(path))):
            problem = f"{str(path)!r} is not a valid entry (path, sha256 and size)"
            continue
        entries[str(path)] = Asset(str(path), digest, size)

    def list_assets(directory: str) -> tuple[Asset, ...]:
        prefix = _normal(directory) + "/"
        found = tuple(a for p, a in sorted(entries.items()) if p.startswith(prefix))
        if not found:
            raise UnsafeFile(f"the document lists no files under {directory}")
        return found
    return list_assets, problem


def _normal(directory: str) -> str:
    parts = [p for p in PurePosixPath(directory.replace("\\", "/")).parts if p != "."]
    return "/".join(parts)


def _path_problem(path: str) -> str | None:
    if _ABSOLUTE.match(path) or ".." in path.replace("\\", "/").split("/"):
        return "its path leaves the recipe directory"
    if len(path) > PATH_MAX:
        return f"its path is longer than {PATH_MAX} characters"
    found = rules.CONTROL.search(path)
    if found is not None:
        return (f"its name holds the control character {found.group()!r}; rename it "
                "with plain characters")
    return None


def walk_assets(root: Path, directory: str) -> tuple[Asset, ...]:
    """Every regular file under ``root/directory``, hashed; UnsafeFile names what is wrong
    (outside the recipe directory, missing, not a directory, a symlink out, a FIFO or
    device, too big, too many)."""
    top = Path(root) / directory
    if not inside(root, top):
        raise UnsafeFile(f"resolves (after following symlinks) outside the recipe directory "
                         f"{root}; a recipe may only ship files from inside its own directory")
    if not top.exists():
        raise UnsafeFile(f"no such directory: looked for {top}; create it beside the recipe "
                         "or fix the path")
    if not top.is_dir():
        raise UnsafeFile(f"{top} is not a directory; build.files lists directories (like "
                         "[files]); put the file in one")
    found: list[Asset] = []
    total = 0
    for here, subdirs, names in os.walk(top, followlinks=False):
        for sub in subdirs:
            if os.path.islink(os.path.join(here, sub)):
                raise UnsafeFile(f"{_shown(root, here, sub)} is a symlink to a directory; "
                                 "copy the directory in instead (links can leave the recipe "
                                 "directory or loop)")
        for name in sorted(names):
            if len(found) >= MAX_FILES:
                raise UnsafeFile(f"holds more than {MAX_FILES} files; pack them into an "
                                 "archive the script unpacks")
            asset = _hash_file(root, Path(here) / name)
            total += asset.size
            if total > MAX_TOTAL_BYTES:
                raise UnsafeFile(f"holds more than {MAX_TOTAL_BYTES} bytes; install large "
                                 "content from a package repository")
            found.append(asset)
    return tuple(found)


def _shown(root: Path, here: str, name: str) -> str:
    return Path(os.path.relpath(os.path.join(here, name), root)).as_posix()


def _hash_file(root: Path, path: Path) -> Asset:
    shown = Path(os.path.relpath(path, root)).as_posix()
    problem = _path_problem(shown)
    if problem:
        raise UnsafeFile(f"{shown!r}: {problem}")
    if not inside(root, path):
        raise UnsafeFile(f"{shown} is a symlink that resolves outside the recipe directory "
                         f"{root}; copy the file in instead")
    try:
        info = os.stat(path)
        _check(shown, info)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise UnsafeFile(f"{shown} is a broken symlink or vanished; remove it") from None
    except OSError as err:
        raise UnsafeFile(f"cannot read {shown}: {err.strerror or err}") from None
    digest = hashlib.sha256()
    size = 0
    try:
        _check(shown, os.fstat(fd))  # swapped for a FIFO since the stat
        while chunk := os.read(fd, 1024 * 1024):
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise _too_big(shown, f"more than {MAX_FILE_BYTES}")
            digest.update(chunk)
    except OSError as err:
        raise UnsafeFile(f"cannot read {shown}: {err.strerror or err}") from None
    finally:
        os.close(fd)
    return Asset(shown, digest.hexdigest(), size)


def _check(shown: str, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFile(f"{shown} is not a regular file (a FIFO, device or socket); "
                         "build.files ships ordinary files only: remove it")
    if info.st_size > MAX_FILE_BYTES:
        raise _too_big(shown, str(info.st_size))


def _too_big(shown: str, size: str) -> UnsafeFile:
    return UnsafeFile(f"{shown} is {size} bytes, over the {MAX_FILE_BYTES}-byte limit on one "
                      "file; install large content from a package repository")
