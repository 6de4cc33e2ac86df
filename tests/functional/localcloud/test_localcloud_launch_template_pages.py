"""DescribeLaunchTemplates pages as on AWS: moto alone answers the first 15 templates and no
NextToken, so a scan of every template (the deletion gate's) would miss the sixteenth."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

MORE_THAN_A_PAGE = 20


@pytest.fixture()
def templates(local_cloud: Any) -> tuple[Any, set[str]]:
    ec2 = boto3.client("ec2")
    token = uuid.uuid4().hex[:8]
    made = {ec2.create_launch_template(
        LaunchTemplateName=f"pages-{token}-{i}", LaunchTemplateData={"ImageId": "ami-12345678"}
    )["LaunchTemplate"]["LaunchTemplateId"] for i in range(MORE_THAN_A_PAGE)}
    return ec2, made


def test_the_paginator_lists_every_template(templates: tuple[Any, set[str]]) -> None:
    ec2, made = templates
    listed = [t["LaunchTemplateId"] for page in
              ec2.get_paginator("describe_launch_templates").paginate()
              for t in page["LaunchTemplates"]]
    assert made <= set(listed)
    assert len(listed) == len(set(listed))


def test_a_page_holds_at_most_max_results_and_names_the_next(
        templates: tuple[Any, set[str]]) -> None:
    ec2, _ = templates
    first = ec2.describe_launch_templates(MaxResults=5)
    assert len(first["LaunchTemplates"]) == 5
    second = ec2.describe_launch_templates(MaxResults=5, NextToken=first["NextToken"])
    assert not ({t["LaunchTemplateId"] for t in first["LaunchTemplates"]}
                & {t["LaunchTemplateId"] for t in second["LaunchTemplates"]})


def test_a_token_it_did_not_give_is_refused(templates: tuple[Any, set[str]]) -> None:
    ec2, _ = templates
    with pytest.raises(ClientError) as caught:
        ec2.describe_launch_templates(NextToken="forged")
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
