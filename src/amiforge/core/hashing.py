"""Content hashes and build keys: the identity of "what would be built".

A recipe's hash covers everything that changes the image: the normalised recipe
document (defaults applied, so spelling a default out does not change it) and the bytes
of every file it references. It must be the same on a laptop, in CI and inside the
Lambda that rebuilds the recipe from its published document, so it ignores what differs
between those places: YAML key order, CRLF line endings in text files, and where the
recipe file sits on disk.

The build key joins that hash with the base AMI id. It names the Step Functions
execution and guards the catalog, so one (recipe content, base AMI) pair can only ever
start one build.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

# Bumped only if the hashing scheme itself changes (that rebuilds every recipe once).
HASH_SCHEME = "amiforge-recipe-v1"

# Keys a full recipe document (Recipe.to_document) carries that are not recipe content:
# where the file lay, the files themselves (hashed separately, by content) and the hash.
_NOT_CONTENT = frozenset({"files", "source", "hash", "format"})

BUILD_KEY_DIGEST_CHARS = 20
_EXECUTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")


def is_text(data: bytes) -> bool:
    """A file is text when it is valid UTF-8 with no NUL byte (how git guesses, roughly)."""
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def normalise_file(data: bytes) -> bytes:
    """Bytes as hashed: CRLF -> LF for text files (a Windows checkout must not rebuild)."""
    return data.replace(b"\r\n", b"\n") if is_text(data) else data


def file_digest(data: bytes) -> str:
    return hashlib.sha256(normalise_file(data)).hexdigest()


def _drop_none(value: Any) -> Any:
    # An absent optional field and one a later amiforge version adds (as None) must hash
    # alike, or upgrading amiforge would rebuild every image for no reason.
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_drop_none(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def recipe_hash(document: dict[str, Any], files: dict[str, bytes]) -> str:
    """sha256 hex of a normalised recipe document plus the content of its referenced files.

    ``document`` is the recipe's normalised document (``Recipe.to_document()`` works
    too: its non-content keys - files, source, hash - are ignored). ``files`` maps each
    referenced path, as written in the recipe, to its raw bytes.
    """
    content = {k: v for k, v in document.items() if k not in _NOT_CONTENT}
    payload = {
        "scheme": HASH_SCHEME,
        "document": _drop_none(content),
        "files": {path: file_digest(data) for path, data in files.items()},
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def build_key(recipe_name: str, recipe_hash: str, base_ami_id: str) -> str:
    """Deterministic build identity, usable as a Step Functions execution name.

    ``<recipe>-<20 hex of sha256(recipe_hash:base_ami_id)>``: the recipe name first so a
    human can read it in the console; 80 bits of digest so collisions never happen in
    practice. Recipe names are at most 40 characters of ``[a-z0-9-]``, so the key is at
    most 61 characters of ``[A-Za-z0-9-]`` (execution names allow 80).
    """
    digest = hashlib.sha256(f"{recipe_hash}:{base_ami_id}".encode()).hexdigest()
    key = f"{recipe_name}-{digest[:BUILD_KEY_DIGEST_CHARS]}"
    if not _EXECUTION_NAME.fullmatch(key):
        # Only a caller bypassing recipe validation can get here; fail loudly, not in AWS.
        raise ValueError(f"recipe name {recipe_name!r} cannot start a build key")
    return key
