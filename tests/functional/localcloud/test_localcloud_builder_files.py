"""The simulated builder's fetch of build.files (localcloud/builder_files.py): it reads
the URL from amiforge's wrapper (Linux and Windows), fetches only from the local cloud
itself, and leaves builds without files, or that never run their script, alone."""

from __future__ import annotations

from amiforge.core.userdata import wrap
from amiforge.localcloud.builder_files import assets_url, with_files
from amiforge.localcloud.builder_script import Outcome

URL = "http://127.0.0.1:1/launches/web-1/1.txt?X-Amz-Signature=abc"


def test_the_url_is_read_from_either_wrapper() -> None:
    for platform in ("linux", "windows"):
        user_data = wrap(platform, "echo hi\n", recipe_name="web", recipe_hash="0" * 64,
                         assets_url=URL)
        assert assets_url(user_data) == URL
    assert assets_url(wrap("linux", "echo hi\n", recipe_name="web",
                           recipe_hash="0" * 64)) is None


def test_a_url_off_the_local_cloud_is_not_fetched_and_fails_the_build() -> None:
    user_data = wrap("linux", "true\n", recipe_name="web", recipe_hash="0" * 64,
                     assets_url="http://169.254.169.254/latest/meta-data/")
    outcome = with_files(Outcome("success"), user_data, windows=False)
    assert (outcome.kind, outcome.exit_code) == ("fail", 1)
    assert outcome.output == ["amiforge: could not fetch the build.files list"]


def test_an_unreachable_list_fails_the_build_before_the_script() -> None:
    user_data = wrap("linux", "true\n", recipe_name="web", recipe_hash="0" * 64,
                     assets_url=URL)  # port 1: nothing listens
    outcome = with_files(Outcome("success"), user_data, windows=False)
    assert outcome.kind == "fail"
    assert outcome.output == ["amiforge: could not fetch the build.files list"]


def test_builds_without_files_or_that_never_run_are_left_alone() -> None:
    plain = wrap("linux", "true\n", recipe_name="web", recipe_hash="0" * 64)
    planned = Outcome("success", 0, ["ran"])
    assert with_files(planned, plain, windows=False) is planned
    fetching = wrap("linux", "true\n", recipe_name="web", recipe_hash="0" * 64, assets_url=URL)
    hung = Outcome("hang")
    assert with_files(hung, fetching, windows=False) is hung
