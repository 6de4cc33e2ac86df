"""The recipe's ``test:`` section: a script run on an instance launched from the new image.

A test is a second, smaller build instance (a *tester*): launched from the image once it
is AVAILABLE, before it is copied, shared or registered; its script runs inside the same
wrapper as a build script (:mod:`amiforge.core.userdata`, so the same ``AMIFORGE-RESULT``
marker and the same power-off at the end), and the build goes on only if it reports
success. The steps that run it are in :mod:`amiforge.steps.test_phase`.

The section is parsed here (called by :mod:`amiforge.core.parse`, with the same
:class:`~amiforge.core.schema.Fields` so problems read like every other field's) and
hashed as part of the recipe: its normalised document is in the recipe's spec, and a
test file's bytes are among the recipe's files. A recipe without ``test:`` hashes as it
always did (the absent section is dropped before hashing).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from amiforge.core import rules
from amiforge.core.schema import Fields

TEST_KEYS = ("user_data", "script", "instance_types", "timeout_minutes")
TEST_SCRIPT_KEYS = ("user_data", "script")
# A test checks that an image boots and serves; hours of it is a build, not a test.
TEST_TIMEOUT_MIN, TEST_TIMEOUT_MAX = 1, 180
DEFAULT_TEST_TIMEOUT_MINUTES = 15
PATH_MAX = 1024
_ABSOLUTE = re.compile(r"^(/|\\|[A-Za-z]:)")

FileReader = Callable[[str], bytes]


@dataclass(frozen=True)
class TestSpec:
    """A validated ``test:`` section. ``script`` is the test script's text (from the file
    or inline); ``instance_types`` empty means "the build's"."""

    __test__ = False  # not a pytest test class, whatever its name says

    script: str
    user_data_file: str | None = None
    instance_types: tuple[str, ...] = ()
    timeout_minutes: int = DEFAULT_TEST_TIMEOUT_MINUTES

    def types_or(self, build_types: tuple[str, ...]) -> tuple[str, ...]:
        return self.instance_types or build_types

    def to_document(self) -> dict[str, Any]:
        return {
            "user_data": self.user_data_file,
            # Inline scripts are part of the document; file scripts are hashed as files.
            "script": self.script if self.user_data_file is None else None,
            "instance_types": list(self.instance_types) or None,
            "timeout_minutes": self.timeout_minutes,
        }


def parse_test(fields: Fields, raw: dict[str, Any], read_file: FileReader
               ) -> tuple[TestSpec | None, dict[str, bytes]]:
    """The ``test`` section of a recipe (None when absent) and the files it read.
    Problems are added to ``fields``; the spec returned then is None."""
    if raw.get("test") is None:
        return None, {}
    before = len(fields.problems)
    section = fields.section(raw, "test")
    if not isinstance(raw.get("test"), dict):
        return None, {}  # refused by section(), with the reason
    fields.known_keys(section, "test", TEST_KEYS)
    path, script, files = _test_script(fields, section, read_file)
    instance_types = fields.string_list(section, "instance_types", "test",
                                        rule=rules.check_instance_type)
    if instance_types == () and section.get("instance_types") == []:
        fields.add("test.instance_types", "is empty; list at least one instance type, or "
                   "leave it out to test on the build's")
    timeout = fields.integer(section, "timeout_minutes", "test", low=TEST_TIMEOUT_MIN,
                             high=TEST_TIMEOUT_MAX, default=DEFAULT_TEST_TIMEOUT_MINUTES)
    if len(fields.problems) > before or script is None or timeout is None:
        return None, {}
    return TestSpec(script=script, user_data_file=path, instance_types=instance_types or (),
                    timeout_minutes=timeout), files


def _test_script(fields: Fields, section: dict[str, Any], read_file: FileReader
                 ) -> tuple[str | None, str | None, dict[str, bytes]]:
    """(file path or None, script text or None on a problem, files read)."""
    given = [k for k in TEST_SCRIPT_KEYS if section.get(k) is not None]
    if not given:
        fields.add("test", "no script: set test.user_data to a script file beside the recipe "
                   "(like scripts/web-test.sh) or test.script to the script text")
        return None, None, {}
    if len(given) > 1:
        fields.add("test", "set only one of test.user_data and test.script, not both")
        return None, None, {}
    if given[0] == "script":
        inline = fields.string(section, "script", "test")
        if inline is None:
            return None, None, {}
        if "\x00" in inline:
            fields.add("test.script", "contains a NUL character; a script must be text")
            return None, None, {}
        if not inline.strip():
            fields.add("test.script", "is empty: a test must check something; write the "
                       "commands that fail when the image is bad")
            return None, None, {}
        return None, inline, {}
    path = fields.string(section, "user_data", "test", max_len=PATH_MAX, rule=_check_path)
    if path is None:
        return None, None, {}
    if _ABSOLUTE.match(path):
        fields.add("test.user_data", f"{path!r} is an absolute path; write it relative to "
                   "the recipe file (like scripts/web-test.sh)")
        return None, None, {}
    try:
        data = read_file(path)
    except LookupError as err:
        fields.add("test.user_data", str(err.args[0]))
        return None, None, {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        fields.add("test.user_data", f"{path} is not UTF-8 text; save it as UTF-8")
        return None, None, {}
    if "\x00" in text:
        fields.add("test.user_data", f"{path} contains NUL bytes; it must be a text file")
        return None, None, {}
    script = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if not script.strip():
        fields.add("test.user_data", f"{path} is empty: a test must check something")
        return None, None, {}
    return path, script, {path: data}


def _check_path(value: str) -> str | None:
    found = rules.CONTROL.search(value)
    if found is None:
        return None
    return (f"the path contains the control character {found.group()!r} at position "
            f"{found.start() + 1}; name the file with a plain path, like scripts/web-test.sh")
