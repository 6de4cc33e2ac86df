"""`deploy` keeps every current parameter value not given; --reset-parameters does not."""

from __future__ import annotations

import pytest

from amiforge.core.stack_parameters import ParameterChange, plan_parameters
from amiforge.errors import InvalidInput

DECLARED = {"BundleBucket": None, "BundleKey": None, "SecondsPerMinute": "60",
            "PollSeconds": "15", "DetectSchedule": "rate(1 hour)"}
MANAGED = {"BundleBucket": "b", "BundleKey": "k2"}
PREVIOUS = {"BundleBucket": "b", "BundleKey": "k1", "SecondsPerMinute": "1",
            "PollSeconds": "1", "DetectSchedule": "rate(1 hour)"}


def test_values_not_given_keep_the_current_ones() -> None:
    plan = plan_parameters(DECLARED, PREVIOUS, {"DetectSchedule": "rate(6 hours)"},
                           managed=MANAGED)
    assert plan.values == {"BundleBucket": "b", "BundleKey": "k2", "SecondsPerMinute": "1",
                           "PollSeconds": "1", "DetectSchedule": "rate(6 hours)"}
    assert plan.changes == (ParameterChange("DetectSchedule", "rate(1 hour)", "rate(6 hours)"),)


def test_reset_returns_the_rest_to_the_defaults_and_says_so() -> None:
    plan = plan_parameters(DECLARED, PREVIOUS, {"PollSeconds": "1"}, managed=MANAGED,
                           reset=True)
    assert plan.values == {"BundleBucket": "b", "BundleKey": "k2", "PollSeconds": "1"}
    assert plan.changes == (ParameterChange("SecondsPerMinute", "1", "60"),)


def test_a_first_deploy_reports_only_what_was_given() -> None:
    plan = plan_parameters(DECLARED, None, {"PollSeconds": "1"}, managed=MANAGED)
    assert plan.values == {"BundleBucket": "b", "BundleKey": "k2", "PollSeconds": "1"}
    assert plan.changes == (ParameterChange("PollSeconds", None, "1"),)


def test_a_parameter_the_template_dropped_is_not_sent() -> None:
    plan = plan_parameters(DECLARED, {**PREVIOUS, "Gone": "x"}, {}, managed=MANAGED)
    assert "Gone" not in plan.values
    assert plan.changes == ()


def test_an_unknown_parameter_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInput) as err:
        plan_parameters(DECLARED, PREVIOUS, {"PolSeconds": "1"}, managed=MANAGED)
    assert str(err.value).startswith("-p PolSeconds: the stack template has no such parameter")
    assert "PollSeconds" in str(err.value) and "BundleKey" not in str(err.value)


def test_deploys_own_parameters_cannot_be_overridden() -> None:
    with pytest.raises(InvalidInput, match="-p BundleKey: set by `amiforge deploy` itself"):
        plan_parameters(DECLARED, PREVIOUS, {"BundleKey": "x"}, managed=MANAGED)
