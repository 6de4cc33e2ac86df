"""What a simulated builder does with ``build.files``: fetch them, as the wrapper would.

amiforge's wrapper (core/userdata.py) carries one presigned URL, of a list of ``SHA256
SIZE URL PATH`` lines (core/assets.py), and fetches every file before the script runs.
The simulator does the same over HTTP - from the local cloud's own S3, on loopback only -
and checks each file's size and sha256, so a build whose files did not arrive (a URL
that does not work, bytes that do not match) fails as it would on EC2, with the same
console lines. A directive in the recipe's script then proves the content arrived:

    # amiforge-sim: require files/motd welcome

fails the build unless the fetched file ``files/motd`` contains ``welcome``.
"""

from __future__ import annotations

import hashlib
import re
import urllib.request
from dataclasses import replace
from urllib.parse import urlsplit

from amiforge.core.assets import MAX_FILE_BYTES
from amiforge.localcloud.builder_script import Outcome

_LINUX_URL = re.compile(r"^amiforge_assets_url='([^'\n]*)'$", re.MULTILINE)
_WINDOWS_URL = re.compile(r"^\$amiforgeAssetsUrl = '([^'\n]*)'$", re.MULTILINE)
_REQUIRE = re.compile(r"^[ \t]*#[ \t]*amiforge-sim:[ \t]*require[ \t]+(\S+)[ \t]+(.+?)[ \t]*$",
                      re.MULTILINE)
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_TIMEOUT = 10


class FetchFailed(Exception):
    """A file the builder could not fetch; the message is the wrapper's console line."""


def assets_url(user_data: str) -> str | None:
    """The build.files list URL in wrapped user data, or None."""
    found = _LINUX_URL.search(user_data) or _WINDOWS_URL.search(user_data)
    return found.group(1) if found else None


def _get(url: str, limit: int) -> bytes:
    if urlsplit(url).hostname not in _LOOPBACK:
        raise FetchFailed(f"the local cloud fetches only from itself, not {urlsplit(url).hostname}")
    with urllib.request.urlopen(url, timeout=_TIMEOUT) as response:  # noqa: S310 (loopback)
        data = bytes(response.read(limit + 1))
    if len(data) > limit:
        raise FetchFailed(f"{url} is over {limit} bytes")
    return data


def fetch(url: str) -> dict[str, bytes]:
    """Every file the list at ``url`` names, checked; FetchFailed names the first failure."""
    try:
        listing = _get(url, 1024 * 1024).decode("utf-8")
    except (OSError, ValueError, FetchFailed):
        raise FetchFailed("amiforge: could not fetch the build.files list") from None
    files: dict[str, bytes] = {}
    for line in listing.splitlines():
        if not line.strip():
            continue
        sha, size, file_url, path = (line.split(" ", 3) + ["", "", "", ""])[:4]
        if not path or path.startswith("/") or ".." in path.split("/"):
            raise FetchFailed(f"amiforge: refusing the file path {path}")
        try:
            data = _get(file_url, MAX_FILE_BYTES)
        except (OSError, ValueError, FetchFailed):
            raise FetchFailed(f"amiforge: could not fetch {path}") from None
        if hashlib.sha256(data).hexdigest() != sha or str(len(data)) != size:
            raise FetchFailed(f"amiforge: {path} does not match its sha256 {sha}")
        files[path] = data
    return files


def with_files(outcome: Outcome, user_data: str, *, windows: bool) -> Outcome:
    """``outcome`` once the builder fetched its files: a failed fetch fails the build
    before the script (exit 1), an unmet ``require`` directive fails it as the script
    would; otherwise the fetch is logged and the planned outcome stands."""
    url = assets_url(user_data)
    if url is None or outcome.kind in ("crash", "hang"):
        return outcome
    try:
        files = fetch(url)
    except FetchFailed as err:
        return Outcome("fail", 1, [str(err)])
    where = "$env:AMIFORGE_FILES" if windows else "/var/lib/amiforge/files"
    fetched = [f"amiforge: fetched build.files into {where} ({len(files)} files)"]
    for path, text in _REQUIRE.findall(user_data):
        data = files.get(path)
        if data is None or text.encode("utf-8") not in data:
            why = "was not fetched" if data is None else f"does not contain {text!r}"
            return Outcome("fail", 1, [*fetched, f"amiforge-sim: {path} {why}"])
    return replace(outcome, output=fetched + outcome.output)
