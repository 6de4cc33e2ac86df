"""Script lint: scripts that power off are refused, IMDSv1 calls warned, prose left alone."""

from __future__ import annotations

import pytest

from amiforge.core.scriptlint import ERROR, WARNING, lint


@pytest.mark.parametrize("line", [
    "shutdown -h now", "sudo poweroff", "init 0", "/sbin/halt", "yum update -y && reboot",
    "systemctl poweroff", "if true; then shutdown -r now; fi", "telinit 6",
    "/usr/sbin/shutdown -h +1",
])
def test_linux_power_off_is_an_error(line: str) -> None:
    (finding,) = lint("linux", f"#!/bin/bash\necho hi\n{line}\n")
    assert finding.severity == ERROR
    assert finding.line == 3
    assert "powers off or restarts" in finding.message


@pytest.mark.parametrize("line", [
    'echo "reboot required after updates"', "# shutdown -h now", "yum install -y haltools",
    "echo ok  # then reboot", "systemctl restart nginx", "grep -q poweroff /etc/x",
])
def test_prose_and_comments_are_not_findings(line: str) -> None:
    assert lint("linux", line + "\n") == []


@pytest.mark.parametrize("line", [
    "Stop-Computer -Force", "Restart-Computer", "shutdown /s /t 0", "shutdown.exe -r",
    '& "C:\\Program Files\\Amazon\\EC2Launch\\ec2launch.exe" sysprep --shutdown',
])
def test_windows_power_off_is_an_error(line: str) -> None:
    (finding,) = lint("windows", line + "\n")
    assert finding.severity == ERROR


def test_imdsv1_is_a_warning_with_the_imdsv2_form() -> None:
    script = ("curl -s http://169.254.169.254/latest/meta-data/instance-id\n"
              "TOKEN=$(curl -sX PUT http://169.254.169.254/latest/api/token "
              "-H 'X-aws-ec2-metadata-token-ttl-seconds: 300')\n"
              "curl -H \"X-aws-ec2-metadata-token: $TOKEN\" "
              "http://169.254.169.254/latest/meta-data/instance-id\n")
    (finding,) = lint("linux", script)
    assert (finding.severity, finding.line) == (WARNING, 1)
    assert "IMDSv1" in finding.message and "X-aws-ec2-metadata-token" in finding.message


def test_windows_imdsv1_names_the_powershell_form() -> None:
    (finding,) = lint("windows",
                      "Invoke-RestMethod http://169.254.169.254/latest/meta-data/ami-id\n")
    assert finding.severity == WARNING and "Invoke-RestMethod -Method Put" in finding.message
