"""The simulator's `slow N` directive: one builder runs longer than the rest."""

from amiforge.localcloud.builder_script import plan_outcome


def test_slow_sets_this_builders_seconds_and_keeps_the_outcome() -> None:
    slow = plan_outcome("#!/bin/bash\n# amiforge-sim: slow 7.5\necho hi\n", windows=False,
                        first_launch=True)
    assert (slow.kind, slow.seconds) == ("success", 7.5)
    failing = plan_outcome("#!/bin/bash\n# amiforge-sim: slow 3\n# amiforge-sim: fail\n",
                           windows=False, first_launch=True)
    assert (failing.kind, failing.seconds) == ("fail", 3.0)


def test_without_slow_the_simulators_default_applies() -> None:
    plain = plan_outcome("#!/bin/bash\necho hi\n", windows=False, first_launch=True)
    assert (plain.kind, plain.seconds) == ("success", None)
