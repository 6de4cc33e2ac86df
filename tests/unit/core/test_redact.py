"""Console tails are masked before they are stored or notified (core.redact)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amiforge.core.redact import MASK, mask
from amiforge.core.userdata import parse_console

KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
PEM = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx4\nQ2h1bmsgb2Yga2V5\n"
       "-----END RSA PRIVATE KEY-----")


@pytest.mark.parametrize(("line", "masked"), [
    (f"export AWS_ACCESS_KEY_ID={KEY_ID}", f"export AWS_ACCESS_KEY_ID=AKIA{MASK}"),
    (f"key ASIA{'Q' * 16} used", f"key ASIA{MASK} used"),
    (f"aws_secret_access_key = {SECRET}", f"aws_secret_access_key = {MASK}"),
    (f"AWS_SECRET_ACCESS_KEY: {SECRET}", f"AWS_SECRET_ACCESS_KEY: {MASK}"),
    (f"{KEY_ID} {SECRET}", f"AKIA{MASK} {MASK}"),
    ("DB_PASSWORD=hunter2", f"DB_PASSWORD={MASK}"),
    ("password: 'correct horse'", f"password: '{MASK}'"),
    ('{"password": "p4ss", "user": "bob"}', f'{{"password": "{MASK}", "user": "bob"}}'),
    ("curl -d secret=abc&x=1", f"curl -d secret={MASK}&x=1"),
    ("GITHUB_TOKEN=ghp_abcdef", f"GITHUB_TOKEN={MASK}"),
    ("api-key: 123", f"api-key: {MASK}"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x.y", f"Authorization: Bearer {MASK}"),
    (f"before\n{PEM}\nafter",
     f"before\n-----BEGIN RSA PRIVATE KEY-----\n{MASK}\n-----END RSA PRIVATE KEY-----\nafter"),
    # a tail cut inside a block: only the END survived, or only the BEGIN
    ("QUJDREVGR0g=\nMIIEow\n-----END PRIVATE KEY-----\nok",
     f"{MASK}\n-----END PRIVATE KEY-----\nok"),
    ("ok\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1r",
     f"ok\n-----BEGIN OPENSSH PRIVATE KEY-----\n{MASK}\n"),
])
def test_secret_looking_values_are_masked(line: str, masked: str) -> None:
    assert mask(line) == masked
    assert mask(masked) == masked


@pytest.mark.parametrize("line", [
    "Installing nginx 1.24.0-1.amzn2023", "AMIFORGE-RESULT: failure exit=3",
    "amiforge: running build script for recipe web", "exit=0 status=ok",
])
def test_ordinary_lines_are_left_alone(line: str) -> None:
    assert mask(line) == line


def test_the_console_tail_is_masked_and_the_verdict_still_read() -> None:
    console = (f"setting up\nexport AWS_SECRET_ACCESS_KEY={SECRET}\n{PEM}\n"
               f"login with password=hunter2 as {KEY_ID}\nAMIFORGE-RESULT: failure exit=2\n")
    verdict = parse_console(console)
    assert (verdict.outcome, verdict.exit_code) == ("failure", 2)
    for secret in (SECRET, "hunter2", KEY_ID, "MIIEowIBAAKCAQEAx4", "Q2h1bmsgb2Yga2V5"):
        assert secret not in verdict.tail
    assert verdict.tail.splitlines()[-1] == "AMIFORGE-RESULT: failure exit=2"


def test_a_key_split_by_the_tail_cut_is_masked_before_the_cut() -> None:
    # 4,000 characters is the cut; the key straddles it.
    console = "x" * 100 + f" {KEY_ID}" + "y" * 3990 + "\nAMIFORGE-RESULT: success\n"
    tail = parse_console(console).tail
    assert "IOSFODNN7EXAMPLE" not in tail and "FODNN7EXAMPLE" not in tail


_B64 = string.ascii_letters + string.digits + "/+"
secrets = st.one_of(
    st.text(string.ascii_uppercase + string.digits, min_size=16, max_size=16).map(
        lambda s: ("key AKIA" + s, f"key AKIA{MASK}")),
    st.text(_B64, min_size=40, max_size=40).map(
        lambda s: ("aws_secret_access_key=" + s, f"aws_secret_access_key={MASK}")),
    st.text(string.ascii_letters + string.digits + "!@#%^*()", min_size=1, max_size=30).map(
        lambda s: ("password=" + s, f"password={MASK}")),
)
noise = st.text(string.ascii_letters + string.digits + " .,:-_\n", max_size=60)


@settings(max_examples=150, deadline=None)
@given(before=noise, secret=secrets, after=noise)
def test_no_generated_secret_survives_masking(before: str, secret: tuple[str, str],
                                              after: str) -> None:
    line, expected = secret
    masked = mask(f"{before}\n{line}\n{after}")
    assert masked.split("\n")[before.count("\n") + 1] == expected
    assert mask(masked) == masked
