"""What a simulated build instance's user script does, read from its user data.

The user data is decoded (base64, gzip, MIME multipart), then :func:`plan_outcome`
decides, as :mod:`.ec2_sim` describes:

* Linux user data (no ``<powershell>``) is checked with ``bash -n``, and so is the
  recipe's own script inside amiforge's wrapper (:func:`amiforge.core.userdata.
  extract_user_script`; the wrapper keeps it in a quoted heredoc that ``bash -n`` of the
  whole would not parse); a syntax error fails the build with bash's message;
* ``# amiforge-sim: fail|hang|flaky|crash`` and ``# amiforge-sim: slow N`` directives;
* user data cloud-init would not run at all hangs (the instance never powers off).
"""

from __future__ import annotations

import base64
import contextlib
import email
import gzip
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPT_PATH = "/var/lib/cloud/instance/scripts/part-001"
WRAPPED_SCRIPT_PATH = "/var/lib/amiforge/build-script"  # where amiforge's wrapper puts it
_DIRECTIVE = re.compile(r"^[ \t]*#[ \t]*amiforge-sim:[ \t]*(fail|hang|flaky|crash)\b",
                        re.MULTILINE)
_SLOW = re.compile(r"^[ \t]*#[ \t]*amiforge-sim:[ \t]*slow[ \t]+(\d+(?:\.\d+)?)\b",
                   re.MULTILINE)
_CLOUD_INIT_STARTS = ("#!", "#cloud-config", "#include", "#cloud-boothook", "#part-handler",
                      "#upstart-job", "## template: jinja")


@dataclass
class Outcome:
    """What the simulated user script does."""

    kind: str                     # success | fail | hang | crash
    exit_code: int = 0
    output: list[str] = field(default_factory=list)   # written when the script ends
    started: list[str] = field(default_factory=list)  # written when the instance boots
    seconds: float | None = None  # how long it runs (None: the simulator's builder_seconds)


def decode_user_data(instance: Any) -> str:
    raw = getattr(instance, "user_data", None)
    if raw is None:
        return ""
    if hasattr(raw, "as_bytes"):
        data = base64.b64decode(raw.as_bytes())  # moto's Base64EncodedString
    else:
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        with contextlib.suppress(ValueError):
            data = base64.b64decode(data, validate=True)
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def _shell_parts(user_data: str) -> list[str]:
    """The shell scripts cloud-init would run from this user data."""
    if user_data.lstrip().lower().startswith("content-type: multipart"):
        message = email.message_from_string(user_data)
        payloads = [part.get_payload(decode=True) for part in message.walk()
                    if part.get_content_type() in ("text/x-shellscript", "text/x-sh")]
        return [payload.decode("utf-8", errors="replace") for payload in payloads
                if isinstance(payload, bytes)]
    if user_data.lstrip().startswith("#cloud-config"):
        return []
    return [user_data] if user_data.strip() else []


def _bash_like(script: str) -> bool:
    first = script.split("\n", 1)[0]
    if not first.startswith("#!"):
        return True
    return bool(re.search(r"\b(ba)?sh\b", first))


def scripts_to_check(user_data: str) -> list[tuple[str, str]]:
    """(script, path on the instance) bash would parse: each shell part, and the recipe's
    script inside amiforge's wrapper (a quoted heredoc, which ``bash -n`` of the wrapper
    alone does not parse)."""
    from amiforge.core.userdata import extract_user_script

    scripts = []
    for part in _shell_parts(user_data):
        scripts.append((part, SCRIPT_PATH))
        inner = extract_user_script(part)
        if inner and _bash_like(inner):
            scripts.append((inner, WRAPPED_SCRIPT_PATH))
    return scripts


def bash_syntax_error(script: str, shown_as: str = SCRIPT_PATH) -> str | None:
    """bash's message for a syntax error in ``script``, or None if it parses."""
    with tempfile.TemporaryDirectory(prefix="amiforge-sim-") as tmp:
        path = Path(tmp) / "part-001"
        path.write_text(script, encoding="utf-8")
        try:
            result = subprocess.run(["bash", "-n", str(path)], capture_output=True,
                                    text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if result.returncode == 0:
            return None
        return result.stderr.replace(str(path), shown_as).strip() or "syntax error"


def runnable(user_data: str) -> bool:
    """Whether cloud-init (or EC2Launch) would run anything from this user data.

    cloud-init runs user data only in a format it knows by its first bytes; anything
    else (say, user data base64-encoded twice) is logged as unhandled and ignored, and
    the instance boots, runs nothing and never powers off.
    """
    return (user_data.startswith(_CLOUD_INIT_STARTS)
            or user_data.lower().startswith("content-type: multipart")
            or "<powershell>" in user_data.lower())


def plan_outcome(user_data: str, *, windows: bool, first_launch: bool) -> Outcome:
    if not runnable(user_data):
        shown = user_data[:40].encode()
        return Outcome("hang", started=[
            f"cloud-init[1603]: __init__.py[WARNING]: Unhandled non-multipart "
            f"(text/x-not-multipart) userdata: '{shown!r}...'"])
    if not windows:
        for script, shown_as in scripts_to_check(user_data):
            error = bash_syntax_error(script, shown_as)
            if error:
                return Outcome("fail", 2, error.splitlines())
    directive = _DIRECTIVE.search(user_data)
    kind = directive.group(1) if directive else "success"
    slow = _SLOW.search(user_data)
    seconds = float(slow.group(1)) if slow else None
    lines = len(user_data.splitlines())
    ran = f"amiforge-sim: ran the user data ({lines} lines)"
    if kind == "fail" or (kind == "flaky" and first_launch):
        why = "fail" if kind == "fail" else "flaky, first launch"
        return Outcome("fail", 1, [ran, f"amiforge-sim: script exited with status 1 ({why})"],
                       seconds=seconds)
    if kind == "crash":
        return Outcome("crash")
    if kind == "hang":
        return Outcome("hang", started=[
            "amiforge-sim: running the user data; it hangs (never shuts down)"])
    return Outcome("success", 0, [ran], seconds=seconds)
