"""ValidateTemplate lints a template's text once (localcloud/fills/cloudformation/lint_once.py):
the same text is answered from what cfn-lint found, a changed text is linted again, and a
template with findings is refused every time with the same message."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import moto.cloudformation.models as cfn_models
import pytest
from botocore.exceptions import ClientError


def _template(description: str, resource_type: str = "AWS::SNS::Topic") -> str:
    return json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Description": description,
                       "Resources": {"Topic": {"Type": resource_type}}})


@pytest.fixture()
def lint_runs(local_cloud: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The templates cfn-lint was run on (moto's backend calls it by this name)."""
    runs: list[str] = []
    real = cfn_models.validate_template_cfn_lint

    def lint(template: str) -> list[Any]:
        runs.append(template)
        return real(template)

    monkeypatch.setattr(cfn_models, "validate_template_cfn_lint", lint)
    return runs


def test_the_same_template_is_linted_once(lint_runs: list[str]) -> None:
    cfn = boto3.client("cloudformation")
    template = _template(f"lint once {uuid.uuid4().hex}")
    first = cfn.validate_template(TemplateBody=template)
    second = cfn.validate_template(TemplateBody=template)
    assert first["Description"] == second["Description"]
    assert lint_runs == [template]
    changed = _template(f"changed {uuid.uuid4().hex}")
    cfn.validate_template(TemplateBody=changed)
    assert lint_runs == [template, changed]


def test_a_template_with_findings_is_refused_each_time(lint_runs: list[str]) -> None:
    cfn = boto3.client("cloudformation")
    bad = _template(f"bad {uuid.uuid4().hex}", resource_type="AWS::No::SuchType")
    messages = []
    for _ in range(2):
        with pytest.raises(ClientError) as refused:
            cfn.validate_template(TemplateBody=bad)
        assert refused.value.response["Error"]["Code"] == "ValidationError"
        messages.append(refused.value.response["Error"]["Message"])
    assert messages[0] == messages[1] and "AWS::No::SuchType" in messages[0]
    assert lint_runs == [bad]
