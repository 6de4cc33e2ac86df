"""The wrapper amiforge puts around a recipe's script, and how its verdict is read back.

A build instance has no SSH, no agent and no way to call amiforge: it boots with user
data and stops. So the user data is a wrapper that (1) writes the recipe's script to
disk verbatim, (2) runs it with its output copied to the serial console, (3) writes
one marker line - ``AMIFORGE-RESULT: success`` or ``AMIFORGE-RESULT: failure exit=N`` -
to the console, (4) removes the script and its log from the disk (the image must not
keep them; the console has the log), and (5) shuts the instance down. The verify step
reads the console output (EC2 GetConsoleOutput) with :func:`parse_console`, which also
masks secret-looking values in the tail (:mod:`amiforge.core.redact`); the last marker
wins, because
the Windows wrapper reports success, then runs sysprep, and reports failure after it if
sysprep did not shut the machine down.

Linux: bash + coreutils only. Windows: PowerShell 5.1 inside ``<powershell>`` tags, run
by EC2Launch v2, which also performs the final sysprep-and-shutdown. The local-cloud
simulator plays EC2 and recovers the user's script with :func:`extract_user_script`.

The marker text is assembled at run time from a variable (``$prefix success``) so the
wrapper's own source never contains a complete marker that could be mistaken for one.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from amiforge.core.redact import mask

RESULT_PREFIX = "AMIFORGE-RESULT:"
USER_DATA_LIMIT = 16384  # EC2's limit on raw user data, before base64
# Room kept in the user data for the presigned URL of a launch's build.files list: SigV4
# query parameters plus a Lambda role's session token (about 1-2 KB).
ASSETS_URL_ROOM = 3072
TAIL_LINES = 40
TAIL_CHARS = 4000

HEREDOC_DELIMITER = "AMIFORGE_USER_SCRIPT_EOF"
_LINUX_OPEN = re.compile(r"""cat >"\$amiforge_script" <<'(AMIFORGE_USER_SCRIPT_EOF(?:_\d+)?)'""")
_PS_OPEN = "$amiforgeUserScript = @'"
# A line starting with '@ would end the PowerShell here-string early (nested here-strings
# in the user's script do this); such lines are prefixed with this and unprefixed at run
# time. Lines that already start with it are prefixed too, so the round trip is exact.
_PS_ESCAPE = "#amiforge-escaped#"

_MARKER = re.compile(
    re.escape(RESULT_PREFIX) + r"[ \t]*(?P<outcome>success|failure)(?:[ \t]+exit=(?P<code>-?\d+))?")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

Outcome = Literal["success", "failure", "missing"]


@dataclass(frozen=True)
class ConsoleVerdict:
    """What a build instance reported: outcome, its script's exit code, and the log tail."""

    outcome: Outcome
    exit_code: int | None
    tail: str


def _normalise(script: str) -> str:
    # Scripts are stored with LF endings (see hashing); a final newline keeps the
    # heredoc/here-string terminator on its own line.
    script = script.replace("\r\n", "\n")
    return script if not script or script.endswith("\n") else script + "\n"


def wrap(platform: str, script: str, *, recipe_name: str, recipe_hash: str,
         assets_url: str | None = None) -> str:
    """User data (text, not base64) that runs ``script`` and reports its result.

    With ``assets_url`` (a presigned URL of a list of ``SHA256 SIZE URL PATH`` lines,
    core/assets.py) the wrapper first fetches each file to ``$AMIFORGE_FILES/PATH`` and
    checks its sha256; if any fetch fails the script does not run and the build fails.
    """
    if assets_url is not None and any(c in assets_url for c in "'\n\r"):
        raise ValueError("the build.files URL contains a quote or line break")
    if platform == "linux":
        return _wrap_linux(_normalise(script), recipe_name, recipe_hash, assets_url)
    if platform == "windows":
        return _wrap_windows(_normalise(script), recipe_name, recipe_hash, assets_url)
    raise ValueError(f"unknown platform {platform!r}; expected linux or windows")


def user_data_size(user_data: str) -> int:
    """Bytes EC2 counts against :data:`USER_DATA_LIMIT`."""
    return len(user_data.encode("utf-8"))


def _heredoc_delimiter(script: str) -> str:
    lines = set(script.split("\n"))
    delimiter, n = HEREDOC_DELIMITER, 0
    while delimiter in lines:  # the script itself contains the terminator: pick another
        n += 1
        delimiter = f"{HEREDOC_DELIMITER}_{n}"
    return delimiter


_LINUX_FETCH = r"""amiforge_files="$amiforge_dir/files"
export AMIFORGE_FILES="$amiforge_files"
# build.files: each line of the list is SHA256 SIZE URL PATH; every file is fetched to
# $AMIFORGE_FILES/PATH and checked before the script may run.
amiforge_fetch() {
  local list="$amiforge_dir/files.list" sha size url path
  curl -fsS --retry 5 --retry-connrefused --max-time 300 -o "$list" "$amiforge_assets_url" \
    || { amiforge_say "amiforge: could not fetch the build.files list"; return 1; }
  while IFS=' ' read -r sha size url path; do
    [[ -n $path ]] || continue
    case "/$path/" in
      //*|*/../*) amiforge_say "amiforge: refusing the file path $path"; return 1 ;;
    esac
    mkdir -p -- "$(dirname -- "$amiforge_files/$path")" || return 1
    curl -fsS --retry 5 --retry-connrefused --max-time 900 -o "$amiforge_files/$path" "$url" \
      || { amiforge_say "amiforge: could not fetch $path"; return 1; }
    [[ $(sha256sum <"$amiforge_files/$path") == "$sha "* ]] \
      || { amiforge_say "amiforge: $path does not match its sha256 $sha"; return 1; }
  done <"$list"
  rm -f -- "$list"
  amiforge_say "amiforge: fetched build.files into $amiforge_files"
}
if amiforge_fetch; then
"""
_LINUX_FETCH_END = """else
  amiforge_status=1
fi
[[ -d $amiforge_files && ! -L $amiforge_files ]] && rm -rf -- "$amiforge_files"
rm -f -- "$amiforge_dir/files.list"
"""


def _wrap_linux(script: str, recipe_name: str, recipe_hash: str,
                assets_url: str | None = None) -> str:
    delimiter = _heredoc_delimiter(script)
    fetch = fetch_end = ""
    if assets_url is not None:
        fetch = f"amiforge_assets_url='{assets_url}'\n" + _LINUX_FETCH
        fetch_end = _LINUX_FETCH_END
    return f"""#!/bin/bash
# amiforge build wrapper for recipe {recipe_name} ({recipe_hash})
# Runs the recipe's script (between the {delimiter} lines) with its output copied to
# the serial console and the build log, reports the result on the console, powers off.
export AMIFORGE_RECIPE={shlex.quote(recipe_name)}
export AMIFORGE_RECIPE_HASH={shlex.quote(recipe_hash)}
amiforge_console="${{AMIFORGE_CONSOLE:-/dev/console}}"
amiforge_log="${{AMIFORGE_LOG:-/var/log/amiforge-build.log}}"
amiforge_dir="${{AMIFORGE_WORKDIR:-/var/lib/amiforge}}"
amiforge_poweroff="${{AMIFORGE_POWEROFF:-poweroff}}"
amiforge_prefix='{RESULT_PREFIX}'
# A missing console or log must not stop the build: fall back to nothing.
{{ : >>"$amiforge_console"; }} 2>/dev/null || amiforge_console=/dev/null
{{ : >>"$amiforge_log"; }} 2>/dev/null || amiforge_log=/dev/null
amiforge_say() {{ printf '%s\\n' "$1" | tee -a "$amiforge_log" >>"$amiforge_console"; }}
mkdir -p -m 700 "$amiforge_dir"
amiforge_script="$amiforge_dir/build-script"
cat >"$amiforge_script" <<'{delimiter}'
{script}{delimiter}
# Honour the script's shebang by naming the interpreter, so the file needs no exec bit
# (and works where the directory is mounted noexec). No shebang: bash.
amiforge_interpreter=(bash)
amiforge_first=
IFS= read -r amiforge_first <"$amiforge_script"
if [[ $amiforge_first == '#!'* ]]; then
  read -r -a amiforge_interpreter <<<"${{amiforge_first#??}}"
  [[ ${{#amiforge_interpreter[@]}} -gt 0 ]] || amiforge_interpreter=(bash)
fi
{fetch}amiforge_say "amiforge: running build script for recipe $AMIFORGE_RECIPE"
(cd / && "${{amiforge_interpreter[@]}}" "$amiforge_script") </dev/null 2>&1 \\
  | tee -a "$amiforge_log" >>"$amiforge_console"
amiforge_status=${{PIPESTATUS[0]}}
{fetch_end}if [[ $amiforge_status -eq 0 ]]; then
  amiforge_say "$amiforge_prefix success"
else
  amiforge_say "$amiforge_prefix failure exit=$amiforge_status"
fi
# The image must not keep the script (it may hold what the build needed) or its log; the
# console kept the log. Only regular files are removed (the log may be /dev/null).
for amiforge_file in "$amiforge_script" "$amiforge_log"; do
  [[ -f $amiforge_file && ! -L $amiforge_file ]] && rm -f -- "$amiforge_file"
done
rmdir -- "$amiforge_dir" 2>/dev/null
# cloud-init keeps copies of the user data (this wrapper, the script inside it): the raw
# user data and the part it ran (this very file: bash keeps reading it once unlinked).
amiforge_cloud="${{AMIFORGE_CLOUD_DIR:-/var/lib/cloud}}"
for amiforge_file in "$amiforge_cloud"/instances/*/user-data.txt* \
    "$amiforge_cloud"/instances/*/scripts/part-* "$amiforge_cloud"/instance/user-data.txt* \
    "$amiforge_cloud"/instance/scripts/part-*; do
  [[ -f $amiforge_file && ! -L $amiforge_file ]] && rm -f -- "$amiforge_file"
done
sync
bash -c "$amiforge_poweroff"
exit "$amiforge_status"
"""


def _ps_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ps_escape(script: str) -> str:
    return "\n".join(_PS_ESCAPE + line if line.startswith(("'@", _PS_ESCAPE)) else line
                     for line in script.split("\n"))


_PS_FETCH = r"""$env:AMIFORGE_FILES = Join-Path $amiforgeDir 'files'
# build.files: each line of the list is SHA256 SIZE URL PATH; every file is fetched to
# $env:AMIFORGE_FILES\PATH and checked before the script may run.
function Get-AmiforgeFiles {
    # Windows PowerShell's progress bar slows Invoke-WebRequest down many times over.
    $ProgressPreference = 'SilentlyContinue'
    try {
        [Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12
        $list = (Invoke-WebRequest -UseBasicParsing -Uri $amiforgeAssetsUrl).Content
        if ($list -is [byte[]]) { $list = [Text.Encoding]::UTF8.GetString($list) }
        foreach ($line in ($list -split "`n")) {
            if (-not $line.Trim()) { continue }
            $sha, $size, $url, $path = $line.TrimEnd("`r") -split ' ', 4
            if ([IO.Path]::IsPathRooted($path) -or $path -match '(^|[\\/])\.\.([\\/]|$)') {
                throw "refusing the file path $path"
            }
            $dest = Join-Path $env:AMIFORGE_FILES $path
            New-Item -ItemType Directory -Force -Path (Split-Path -Parent $dest) | Out-Null
            Invoke-WebRequest -UseBasicParsing -Uri $url -OutFile $dest
            if ((Get-FileHash -Algorithm SHA256 -LiteralPath $dest).Hash.ToLower() -ne $sha) {
                throw "$path does not match its sha256 $sha"
            }
        }
        Write-AmiforgeLine "amiforge: fetched build.files into $env:AMIFORGE_FILES"
        return $true
    } catch {
        Write-AmiforgeLine "amiforge: could not fetch build.files: $_"
        return $false
    }
}
$amiforgeStatus = 1
if (Get-AmiforgeFiles) {
"""
_PS_FETCH_END = """}
Remove-Item -LiteralPath $env:AMIFORGE_FILES -Recurse -Force -ErrorAction SilentlyContinue
"""


def _wrap_windows(script: str, recipe_name: str, recipe_hash: str,
                  assets_url: str | None = None) -> str:
    if "</powershell>" in script.lower():
        raise ValueError("the script contains '</powershell>', which would end EC2Launch's "
                         "user data block early; split the word, e.g. '</power' + 'shell>'")
    escaped = _ps_escape(script)
    unescape = (f"$amiforgeUserScript = $amiforgeUserScript -replace "
                f"'(?m)^{_PS_ESCAPE}', ''\n" if escaped != script else "")
    fetch = fetch_end = ""
    if assets_url is not None:
        fetch = f"$amiforgeAssetsUrl = {_ps_quote(assets_url)}\n" + _PS_FETCH
        fetch_end = _PS_FETCH_END
    return f"""<powershell>
# amiforge build wrapper for recipe {recipe_name} ({recipe_hash})
# Runs the recipe's script (the here-string below) with its output copied to COM1 (the
# console EC2 captures) and the build log, reports the result there and in the EC2Launch
# log, then sysprep-and-shutdown via EC2Launch v2 on success, or Stop-Computer on failure.
$ErrorActionPreference = 'Continue'
$env:AMIFORGE_RECIPE = {_ps_quote(recipe_name)}
$env:AMIFORGE_RECIPE_HASH = {_ps_quote(recipe_hash)}
$amiforgePrefix = '{RESULT_PREFIX}'
$amiforgeDir = Join-Path $env:ProgramData 'amiforge'
$amiforgeLog = Join-Path $amiforgeDir 'amiforge-build.log'
$amiforgeLaunchLog = Join-Path $env:ProgramData 'Amazon\\EC2Launch\\log\\agent.log'
$amiforgeLaunch = Join-Path $env:ProgramFiles 'Amazon\\EC2Launch\\ec2launch.exe'
New-Item -ItemType Directory -Force -Path $amiforgeDir | Out-Null
function Write-AmiforgeLine([string]$Line) {{
    if ($script:amiforgeLog) {{
        Add-Content -Path $script:amiforgeLog -Value $Line -ErrorAction SilentlyContinue
    }}
    # Open per line: EC2Launch writes to COM1 too, so neither may hold it open.
    try {{
        $port = New-Object System.IO.Ports.SerialPort 'COM1', 115200, 'None', 8, 'One'
        $port.Open(); $port.WriteLine($Line); $port.Close()
    }} catch {{ }}
}}
$amiforgeScript = Join-Path $amiforgeDir 'build-script.ps1'
{_PS_OPEN}
{escaped}
'@
{unescape}Set-Content -Path $amiforgeScript -Value $amiforgeUserScript -Encoding UTF8
{fetch}Write-AmiforgeLine "amiforge: running build script for recipe $env:AMIFORGE_RECIPE"
& powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File $amiforgeScript 2>&1 |
    ForEach-Object {{ Write-AmiforgeLine "$_" }}
$amiforgeStatus = $LASTEXITCODE
{fetch_end}if ($amiforgeStatus -eq 0) {{
    $amiforgeResult = "$amiforgePrefix success"
}} else {{
    $amiforgeResult = "$amiforgePrefix failure exit=$amiforgeStatus"
}}
Write-AmiforgeLine $amiforgeResult
Add-Content -Path $amiforgeLaunchLog -Value $amiforgeResult -ErrorAction SilentlyContinue
# The image must not keep the script or its log (COM1, the console, kept the log); later
# lines (sysprep's) go to COM1 only.
Remove-Item -LiteralPath $amiforgeScript, $amiforgeLog -Force -ErrorAction SilentlyContinue
$script:amiforgeLog = $null
# Only an empty directory: Remove-Item on one with children would ask for confirmation.
if (-not (Get-ChildItem -LiteralPath $amiforgeDir -Force -ErrorAction SilentlyContinue)) {{
    Remove-Item -LiteralPath $amiforgeDir -Force -ErrorAction SilentlyContinue
}}
if ($amiforgeStatus -eq 0) {{
    if (Test-Path $amiforgeLaunch) {{
        # Generalise the image and shut down; instances launched from it run first-boot
        # setup (new SID, password, their own user data) again.
        & "$env:ProgramFiles\\Amazon\\EC2Launch\\ec2launch.exe" sysprep --shutdown 2>&1 |
            ForEach-Object {{ Write-AmiforgeLine "$_" }}
        if ($LASTEXITCODE -eq 0) {{ exit 0 }}
        $amiforgeStatus = $LASTEXITCODE
        Write-AmiforgeLine "amiforge: EC2Launch sysprep failed (exit $amiforgeStatus)"
    }} else {{
        $amiforgeStatus = 1
        Write-AmiforgeLine "amiforge: $amiforgeLaunch not found; use a base image with EC2Launch v2"
    }}
    Write-AmiforgeLine "$amiforgePrefix failure exit=$amiforgeStatus"
}}
Stop-Computer -Force
</powershell>
"""


def extract_user_script(user_data: str) -> str | None:
    """The recipe's script inside wrapped user data (Linux or Windows), or None.

    Returns the script as it was written to disk: LF line endings, newline-terminated.
    """
    lines = user_data.replace("\r\n", "\n").split("\n")
    for i, line in enumerate(lines):
        opened = _LINUX_OPEN.fullmatch(line)
        if opened:
            end = _find(lines, i + 1, opened.group(1).__eq__)
            if end is None:
                return None
            body = lines[i + 1:end]
            return "\n".join(body) + "\n" if body else ""
        if line == _PS_OPEN:
            end = _find(lines, i + 1, lambda candidate: candidate.startswith("'@"))
            if end is None:
                return None
            return "\n".join(line[len(_PS_ESCAPE):] if line.startswith(_PS_ESCAPE) else line
                             for line in lines[i + 1:end])
    return None


def _find(lines: list[str], start: int, test: Callable[[str], bool]) -> int | None:
    return next((j for j in range(start, len(lines)) if test(lines[j])), None)


def _clean(text: str) -> str:
    text = _ANSI.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _CONTROL.sub("", text)


def console_tail(text: str) -> str:
    """The last lines of a console log, cleaned of escapes, for a failure report.

    Secret-looking values are masked (core.redact) on the whole text, before it is cut,
    so a key split by the cut cannot escape the pattern; every stored or notified tail
    comes from here.
    """
    lines = mask(_clean(text)).rstrip("\n").split("\n")
    return "\n".join(lines[-TAIL_LINES:])[-TAIL_CHARS:]


def parse_console(text: str | None) -> ConsoleVerdict:
    """Read a build's verdict from its console output; the last marker wins."""
    text = text or ""
    tail = console_tail(text) if text.strip() else ""
    markers = list(_MARKER.finditer(_clean(text)))
    if not markers:
        return ConsoleVerdict("missing", None, tail)
    last = markers[-1]
    if last.group("outcome") == "success":
        return ConsoleVerdict("success", 0, tail)
    code = last.group("code")
    return ConsoleVerdict("failure", int(code) if code is not None else None, tail)
