"""The user-data wrapper: the Linux one really runs (bash, shimmed console and power-off);
the Windows one is checked as text; console verdicts are parsed with the last marker winning.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amiforge.core.userdata import (
    RESULT_PREFIX,
    USER_DATA_LIMIT,
    ConsoleVerdict,
    extract_user_script,
    parse_console,
    wrap,
)

HASH = "0123456789abcdef" * 4
BASH = shutil.which("bash")


@dataclass
class Run:
    returncode: int
    console: str
    log: str
    powered_off: bool
    workdir: Path


def run_linux(tmp_path: Path, script: str) -> Run:
    """Run wrapped user data as cloud-init would, with the machine's edges shimmed."""
    user_data = tmp_path / "user-data"
    user_data.write_text(wrap("linux", script, recipe_name="web", recipe_hash=HASH))
    console, log, off = tmp_path / "console", tmp_path / "build.log", tmp_path / "off"
    env = {
        "PATH": "/usr/bin:/bin",
        "AMIFORGE_CONSOLE": str(console),
        "AMIFORGE_LOG": str(log),
        "AMIFORGE_WORKDIR": str(tmp_path / "work"),
        "AMIFORGE_POWEROFF": f"echo called >{off}",
    }
    proc = subprocess.run([BASH or "bash", str(user_data)], env=env, capture_output=True,
                          text=True, timeout=30)
    return Run(proc.returncode, console.read_text() if console.exists() else "",
               log.read_text() if log.exists() else "", off.exists(), tmp_path / "work")


needs_bash = pytest.mark.skipif(BASH is None, reason="needs bash")


# --- Linux: really run it --------------------------------------------------------------

@needs_bash
def test_success_writes_the_marker_and_powers_off(tmp_path: Path) -> None:
    run = run_linux(tmp_path, "#!/bin/bash\necho configuring nginx\nexit 0\n")
    assert run.powered_off
    assert run.returncode == 0
    assert run.console.splitlines() == [
        "amiforge: running build script for recipe web",
        "configuring nginx",
        "AMIFORGE-RESULT: success",
    ]
    assert run.log == ""  # removed before power-off: the console has it
    assert parse_console(run.console).outcome == "success"


@needs_bash
def test_failure_reports_the_exit_code_and_still_powers_off(tmp_path: Path) -> None:
    run = run_linux(tmp_path, "echo about to fail\necho oops >&2\nexit 3\n")
    assert run.powered_off
    assert run.console.splitlines()[-3:] == [
        "about to fail", "oops", "AMIFORGE-RESULT: failure exit=3"]
    verdict = parse_console(run.console)
    assert (verdict.outcome, verdict.exit_code) == ("failure", 3)
    assert "oops" in verdict.tail


@needs_bash
def test_set_e_failure_midway(tmp_path: Path) -> None:
    run = run_linux(tmp_path, "#!/bin/bash\nset -e\necho step one\nfalse\necho never\n")
    assert "never" not in run.console
    assert run.console.splitlines()[-1] == "AMIFORGE-RESULT: failure exit=1"
    assert run.powered_off


@needs_bash
def test_the_shebang_is_honoured(tmp_path: Path) -> None:
    # sh has no $BASH_VERSION: proves the script ran under the shebang's interpreter.
    run = run_linux(tmp_path, '#!/bin/sh\necho "bash=${BASH_VERSION:-none}"\n')
    assert "bash=none" in run.console
    run = run_linux(tmp_path, '#!/usr/bin/env bash\necho "bash=${BASH_VERSION:+yes}"\n')
    assert "bash=yes" in run.console


@needs_bash
def test_no_shebang_runs_bash(tmp_path: Path) -> None:
    run = run_linux(tmp_path, 'echo "bash=${BASH_VERSION:+yes}"')  # no final newline either
    assert "bash=yes" in run.console
    assert run.console.splitlines()[-1] == "AMIFORGE-RESULT: success"


@needs_bash
def test_script_is_written_verbatim(tmp_path: Path) -> None:
    # Dollar signs, backticks, backslashes and a line equal to the heredoc delimiter must
    # all reach the disk untouched (quoted heredoc; delimiter changed on collision).
    # The wrapper deletes the script after the run; the script keeps a copy of itself.
    script = ("#!/bin/bash\necho '$HOME `date` \\n'\ncat <<'X'\n"
              "AMIFORGE_USER_SCRIPT_EOF\nX\ncp -- \"$0\" \"${0%/*}/../copy\"\n")
    run = run_linux(tmp_path, script)
    assert (tmp_path / "copy").read_text() == script
    assert "$HOME `date` \\n" in run.console
    assert "AMIFORGE_USER_SCRIPT_EOF" in run.console
    assert run.console.splitlines()[-1] == "AMIFORGE-RESULT: success"


@needs_bash
def test_script_sees_recipe_identity_and_no_stdin(tmp_path: Path) -> None:
    run = run_linux(tmp_path, 'echo "$AMIFORGE_RECIPE $AMIFORGE_RECIPE_HASH"\nread -r x || '
                    'echo "stdin closed"\n')
    assert f"web {HASH}" in run.console
    assert "stdin closed" in run.console


@needs_bash
def test_missing_interpreter_is_a_failure(tmp_path: Path) -> None:
    run = run_linux(tmp_path, "#!/no/such/interpreter\necho hi\n")
    assert run.console.splitlines()[-1] == "AMIFORGE-RESULT: failure exit=127"
    assert run.powered_off


@needs_bash
def test_unwritable_console_does_not_stop_the_build(tmp_path: Path) -> None:
    user_data = tmp_path / "user-data"
    user_data.write_text(wrap("linux", "echo hi\n", recipe_name="web", recipe_hash=HASH))
    off = tmp_path / "off"
    proc = subprocess.run(
        [BASH or "bash", str(user_data)], capture_output=True, text=True, timeout=30,
        env={"PATH": "/usr/bin:/bin", "AMIFORGE_CONSOLE": str(tmp_path / "no" / "console"),
             "AMIFORGE_LOG": str(tmp_path / "log"), "AMIFORGE_WORKDIR": str(tmp_path / "w"),
             "AMIFORGE_POWEROFF": f"touch {off}"})
    assert proc.returncode == 0
    assert off.exists()
    assert not (tmp_path / "log").exists()  # written, then removed with the script


def test_linux_wrapper_text() -> None:
    text = wrap("linux", "echo hi\n", recipe_name="web", recipe_hash=HASH)
    assert text.startswith("#!/bin/bash\n")
    assert "<<'AMIFORGE_USER_SCRIPT_EOF'\necho hi\nAMIFORGE_USER_SCRIPT_EOF\n" in text
    assert 'amiforge_poweroff="${AMIFORGE_POWEROFF:-poweroff}"' in text
    assert "sync\n" in text
    assert "/var/log/amiforge-build.log" in text and "/dev/console" in text
    # The wrapper's own text never holds a whole marker: it must not be mistaken for one.
    assert parse_console(text).outcome == "missing"


@needs_bash
def test_linux_wrapper_passes_bash_n() -> None:
    text = wrap("linux", "echo hi\n", recipe_name="web", recipe_hash=HASH)
    assert subprocess.run([BASH or "bash", "-n"], input=text, text=True).returncode == 0


@needs_bash
@pytest.mark.parametrize("script", ["echo done\n", "echo broke\nexit 4\n"])
def test_the_script_and_the_log_are_removed_before_power_off(tmp_path: Path,
                                                            script: str) -> None:
    run = run_linux(tmp_path, script)
    assert run.powered_off
    assert not (run.workdir / "build-script").exists()
    assert not run.workdir.exists()  # the work directory was left empty, and removed
    assert run.log == ""  # the log file is gone ...
    assert run.console.splitlines()[-1].startswith("AMIFORGE-RESULT: ")  # ... the console has it
    assert not (tmp_path / "build.log").exists()


@needs_bash
def test_cleanup_happens_before_power_off(tmp_path: Path) -> None:
    user_data = tmp_path / "user-data"
    user_data.write_text(wrap("linux", "echo hi\n", recipe_name="web", recipe_hash=HASH))
    seen = tmp_path / "seen"
    env = {"PATH": "/usr/bin:/bin", "AMIFORGE_CONSOLE": str(tmp_path / "console"),
           "AMIFORGE_LOG": str(tmp_path / "build.log"), "AMIFORGE_WORKDIR": str(tmp_path / "w"),
           "AMIFORGE_POWEROFF": f"ls -a {tmp_path} >{seen}"}
    subprocess.run([BASH or "bash", str(user_data)], env=env, capture_output=True, timeout=30,
                   check=True)
    listing = seen.read_text().split()
    assert "build.log" not in listing and "w" not in listing and "console" in listing


@needs_bash
def test_a_dev_null_log_is_not_removed(tmp_path: Path) -> None:
    # A missing log falls back to /dev/null, which the cleanup must leave alone.
    user_data = tmp_path / "user-data"
    user_data.write_text(wrap("linux", "echo hi\n", recipe_name="web", recipe_hash=HASH))
    env = {"PATH": "/usr/bin:/bin", "AMIFORGE_CONSOLE": str(tmp_path / "console"),
           "AMIFORGE_LOG": "/dev/null", "AMIFORGE_WORKDIR": str(tmp_path / "w"),
           "AMIFORGE_POWEROFF": "true"}
    subprocess.run([BASH or "bash", str(user_data)], env=env, capture_output=True, timeout=30,
                   check=True)
    assert Path("/dev/null").is_char_device()


# --- Windows: the text -----------------------------------------------------------------

WIN_SCRIPT = "$ErrorActionPreference = 'Stop'\nInstall-WindowsFeature Web-Server\n"


def test_windows_wrapper_text() -> None:
    text = wrap("windows", WIN_SCRIPT, recipe_name="iis", recipe_hash=HASH)
    assert text.startswith("<powershell>\n") and text.endswith("</powershell>\n")
    assert text.count("<powershell>") == 1 and text.count("</powershell>") == 1
    assert f"$amiforgeUserScript = @'\n{WIN_SCRIPT}\n'@\n" in text
    assert f"$amiforgePrefix = '{RESULT_PREFIX}'" in text
    assert '$amiforgeResult = "$amiforgePrefix success"' in text
    assert '$amiforgeResult = "$amiforgePrefix failure exit=$amiforgeStatus"' in text
    # the marker goes to COM1 (EC2's console) and to the EC2Launch log
    assert "New-Object System.IO.Ports.SerialPort 'COM1'" in text
    assert "Add-Content -Path $amiforgeLaunchLog -Value $amiforgeResult" in text
    assert "'Amazon\\EC2Launch\\log\\agent.log'" in text
    # success: EC2Launch v2 sysprep with shutdown; failure: plain stop
    assert '& "$env:ProgramFiles\\Amazon\\EC2Launch\\ec2launch.exe" sysprep --shutdown' in text
    assert "Stop-Computer -Force" in text
    assert "$env:AMIFORGE_RECIPE = 'iis'" in text
    assert parse_console(text).outcome == "missing"
    # the script and the log are removed after the result and before sysprep/stop; lines
    # written after that go to COM1 only
    removal = text.index("Remove-Item -LiteralPath $amiforgeScript, $amiforgeLog -Force")
    assert text.index("Write-AmiforgeLine $amiforgeResult") < removal
    assert removal < text.index("sysprep --shutdown") < text.index("Stop-Computer -Force")
    assert "$script:amiforgeLog = $null" in text[removal:text.index("sysprep --shutdown")]
    assert "if ($script:amiforgeLog) {" in text
    # the directory goes only when empty (a non-empty one would prompt for confirmation)
    assert ("if (-not (Get-ChildItem -LiteralPath $amiforgeDir -Force -ErrorAction "
            "SilentlyContinue)) {\n    Remove-Item -LiteralPath $amiforgeDir") in text


def test_windows_here_string_terminators_in_the_script_are_escaped() -> None:
    script = "$x = @'\nnested here-string\n'@\n#amiforge-escaped#literal\nWrite-Output $x\n"
    text = wrap("windows", script, recipe_name="iis", recipe_hash=HASH)
    body = text.split("$amiforgeUserScript = @'\n", 1)[1].split("\n'@\n", 1)[0]
    assert not any(line.startswith("'@") for line in body.split("\n"))
    assert "-replace '(?m)^#amiforge-escaped#', ''" in text
    assert extract_user_script(text) == script


def test_windows_script_cannot_contain_the_closing_tag() -> None:
    with pytest.raises(ValueError, match="would end EC2Launch's user data block early"):
        wrap("windows", "Write-Output '</PowerShell>'", recipe_name="iis", recipe_hash=HASH)


def test_unknown_platform() -> None:
    with pytest.raises(ValueError, match="unknown platform 'macos'"):
        wrap("macos", "x", recipe_name="r", recipe_hash=HASH)


# --- extract_user_script ---------------------------------------------------------------

@pytest.mark.parametrize("platform", ["linux", "windows"])
@pytest.mark.parametrize("script", ["", "echo hi\n", "a\n\nb\n", "\n", "# amiforge-sim: fail\n"])
def test_extract_round_trip(platform: str, script: str) -> None:
    wrapped = wrap(platform, script, recipe_name="r", recipe_hash=HASH)
    assert extract_user_script(wrapped) == script


def test_extract_adds_the_final_newline_and_normalises_crlf() -> None:
    assert extract_user_script(wrap("linux", "a\r\nb", recipe_name="r", recipe_hash=HASH)) == (
        "a\nb\n")


def test_extract_from_user_data_that_is_not_ours() -> None:
    assert extract_user_script("#!/bin/bash\necho plain user data\n") is None
    assert extract_user_script("<powershell>\nWrite-Output hi\n</powershell>") is None
    assert extract_user_script("cat >\"$amiforge_script\" <<'AMIFORGE_USER_SCRIPT_EOF'\nx\n") \
        is None


_LINES = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                                 blacklist_characters="\r\n"), max_size=30),
                  max_size=8)


@settings(max_examples=60, deadline=None)
@given(lines=_LINES, platform=st.sampled_from(["linux", "windows"]))
def test_extract_round_trip_property(lines: list[str], platform: str) -> None:
    script = "".join(line + "\n" for line in lines)
    if platform == "windows" and "</powershell>" in script.lower():
        return
    wrapped = wrap(platform, script, recipe_name="r", recipe_hash=HASH)
    assert extract_user_script(wrapped) == script


# --- parse_console ---------------------------------------------------------------------

def test_console_success() -> None:
    console = ("[   12.3] cloud-init[812]: hello\r\n"
               "[   13.0] cloud-init[812]: AMIFORGE-RESULT: success\r\n")
    assert parse_console(console) == ConsoleVerdict(
        "success", 0,
        "[   12.3] cloud-init[812]: hello\n[   13.0] cloud-init[812]: AMIFORGE-RESULT: success")


def test_console_failure() -> None:
    verdict = parse_console("boom\nAMIFORGE-RESULT: failure exit=42\n")
    assert (verdict.outcome, verdict.exit_code) == ("failure", 42)


def test_console_failure_without_a_code() -> None:
    assert parse_console("AMIFORGE-RESULT: failure\n").exit_code is None


def test_the_last_marker_wins() -> None:
    # Windows: success is reported, then sysprep fails and failure follows.
    verdict = parse_console("AMIFORGE-RESULT: success\nsysprep failed\n"
                            "AMIFORGE-RESULT: failure exit=5\n")
    assert (verdict.outcome, verdict.exit_code) == ("failure", 5)
    # A script that echoes a fake failure marker is overruled by the wrapper's own.
    assert parse_console("AMIFORGE-RESULT: failure exit=1\nAMIFORGE-RESULT: success\n"
                         ).outcome == "success"


@pytest.mark.parametrize("text", [None, "", "booting...\nlogin:\n", "AMIFORGE-RESULT: maybe"])
def test_console_without_a_marker(text: str | None) -> None:
    verdict = parse_console(text)
    assert (verdict.outcome, verdict.exit_code) == ("missing", None)


def test_tail_is_the_last_40_lines_and_at_most_4000_chars() -> None:
    lines = [f"line {i}" for i in range(100)]
    tail = parse_console("\n".join(lines) + "\n").tail
    assert tail.split("\n") == lines[-40:]
    long = parse_console(("x" * 300 + "\n") * 30).tail
    assert len(long) == 4000


def test_tail_is_cleaned_of_escapes_and_control_characters() -> None:
    tail = parse_console("\x1b[0;32mOK\x1b[0m step\x00\x07\r\nnext\rline\n").tail
    assert tail == "OK step\nnext\nline"


def test_user_data_limit_constant() -> None:
    assert USER_DATA_LIMIT == 16384
    assert RESULT_PREFIX == "AMIFORGE-RESULT:"


@needs_bash
def test_cloud_inits_copies_of_the_user_data_leave_the_image_too(tmp_path: Path) -> None:
    # As cloud-init lays them out: the raw user data, and the part it runs (this wrapper).
    cloud = tmp_path / "cloud"
    instance = cloud / "instances" / "i-0123456789abcdef0"
    (instance / "scripts").mkdir(parents=True)
    (cloud / "instance").symlink_to(instance)
    text = wrap("linux", "echo s3cret-step\n", recipe_name="web", recipe_hash=HASH)
    (instance / "user-data.txt").write_text(text)
    (instance / "user-data.txt.i").write_text(text)
    part = instance / "scripts" / "part-001"
    part.write_text(text)
    (instance / "obj.pkl").write_text("cloud-init's own state stays")
    env = {"PATH": "/usr/bin:/bin", "AMIFORGE_CONSOLE": str(tmp_path / "console"),
           "AMIFORGE_LOG": str(tmp_path / "build.log"), "AMIFORGE_WORKDIR": str(tmp_path / "w"),
           "AMIFORGE_POWEROFF": "true", "AMIFORGE_CLOUD_DIR": str(cloud)}
    proc = subprocess.run([BASH or "bash", str(part)], env=env, capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "AMIFORGE-RESULT: success" in (tmp_path / "console").read_text()
    left = [p for p in cloud.rglob("*") if p.is_file()]
    assert [p.name for p in left] == ["obj.pkl"]
    assert all("s3cret-step" not in p.read_text() for p in left)
