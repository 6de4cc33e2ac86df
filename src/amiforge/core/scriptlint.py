"""What ``amiforge validate`` can tell about a build script before any build. Pure.

amiforge wraps the user's script (:mod:`amiforge.core.userdata`): the wrapper runs it,
writes ``AMIFORGE-RESULT: ...`` to the console, and only then powers the instance off. Two
habits of older build tools break that, and one is refused by every builder:

* **A script that powers off, halts or reboots** the machine (``shutdown -h now``,
  ``poweroff``, ``init 0``, ``systemctl reboot``; ``Stop-Computer`` on Windows, as
  lambda_build_ami's scripts ended): the instance stops before the wrapper writes the
  marker, so the build fails with "no marker". An error: amiforge does this itself.
* **Instance metadata without a session token** (``curl http://169.254.169.254/...``,
  IMDSv1): builders require IMDSv2, so the call gets 401. A warning naming the line and
  the IMDSv2 form; ``validate --strict`` makes warnings errors.

Only command positions are matched (line start, after ``;``, ``&&``, ``|``, ``sudo``,
``then`` ...), and comments are ignored, so ``echo "reboot needed"`` is no finding.
The bash syntax check (``bash -n``) needs a process, so it lives in ``ops/lint.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ERROR, WARNING = "error", "warning"

_COMMAND_START = r"(?:^|[;&|(`]\s*|\$\(\s*|\b(?:sudo|then|do|else|exec|nohup)\s+)"
_LINUX_POWER = re.compile(
    _COMMAND_START + r"(?:/usr)?(?:/s?bin/)?"
    r"(poweroff|halt|reboot|shutdown|init\s+[06]|telinit\s+[06]"
    r"|systemctl\s+(?:poweroff|halt|reboot|kexec))\b")
_WINDOWS_POWER = re.compile(
    r"(?:^|[;|(]\s*)(?:&\s*)?(Stop-Computer|Restart-Computer|shutdown(?:\.exe)?\s+[/-][srp])\b"
    r"|(ec2launch(?:\.exe)?\"?\s+sysprep)\b", re.IGNORECASE)
_METADATA = re.compile(r"169\.254\.169\.254|\[?fd00:ec2::254\]?", re.IGNORECASE)
_TOKEN_HEADER = re.compile(r"X-aws-ec2-metadata-token", re.IGNORECASE)

IMDSV2_LINUX = ('TOKEN=$(curl -sX PUT http://169.254.169.254/latest/api/token '
                '-H "X-aws-ec2-metadata-token-ttl-seconds: 300") then '
                'curl -H "X-aws-ec2-metadata-token: $TOKEN" http://169.254.169.254/...')
IMDSV2_WINDOWS = ('$token = Invoke-RestMethod -Method Put -Uri '
                  'http://169.254.169.254/latest/api/token -Headers '
                  '@{"X-aws-ec2-metadata-token-ttl-seconds"="300"} then '
                  'Invoke-RestMethod -Headers @{"X-aws-ec2-metadata-token"=$token} -Uri ...')


@dataclass(frozen=True)
class Finding:
    severity: str   # error | warning
    line: int       # 1-based line of the script
    message: str


def _code(line: str, platform: str) -> str:
    """The line without its comment (a # outside quotes, roughly: enough for a lint)."""
    stripped = line.lstrip()
    if stripped.startswith("#") or (platform == "windows" and stripped.startswith("<#")):
        return ""
    return re.split(r"\s#", line, maxsplit=1)[0]


def lint(platform: str, script: str) -> list[Finding]:
    """Findings for one build script (``platform``: linux | windows), in line order."""
    findings: list[Finding] = []
    power = _WINDOWS_POWER if platform == "windows" else _LINUX_POWER
    imdsv2 = IMDSV2_WINDOWS if platform == "windows" else IMDSV2_LINUX
    for number, raw in enumerate(script.splitlines(), start=1):
        code = _code(raw, platform)
        if not code.strip():
            continue
        match = power.search(code)
        if match:
            findings.append(Finding(ERROR, number, (
                f"line {number} powers off or restarts the machine "
                f"({(match.group(1) or match.group(2)).strip()!r}):"
                " remove it; amiforge reads the script's result, then powers off itself "
                "(stopping first loses the result, so the build fails)")))
        if _METADATA.search(code) and not _TOKEN_HEADER.search(code):
            findings.append(Finding(WARNING, number, (
                f"line {number} reads instance metadata without a session token (IMDSv1); "
                f"builders require IMDSv2, so it will get 401: use {imdsv2}")))
    return findings
