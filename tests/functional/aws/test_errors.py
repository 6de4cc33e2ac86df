"""aws/errors.py against real answers of the local cloud: what each ClientError becomes."""

from __future__ import annotations

import pytest

from amiforge.aws.errors import ClientError, aws_call, is_transient, translate
from amiforge.aws.session import AwsContext
from amiforge.errors import AwsCallFailed, TransientAwsError


def test_an_error_names_the_operation_and_aws_code(aws: AwsContext) -> None:
    with pytest.raises(AwsCallFailed) as caught, aws_call("DescribeTable"):
        aws.client("dynamodb").describe_table(TableName="amiforge-no-such-table")
    assert caught.value.operation == "DescribeTable"
    assert caught.value.code == "ResourceNotFoundException"
    assert str(caught.value).startswith("DescribeTable failed: ResourceNotFoundException: ")
    assert isinstance(caught.value.__cause__, ClientError)


@pytest.mark.parametrize(("code", "status"), [
    ("ThrottlingException", 400), ("RequestLimitExceeded", 503),
    ("ProvisionedThroughputExceededException", 400), ("SomethingNew", 500)])
def test_throttling_and_5xx_become_transient(code: str, status: int) -> None:
    err = ClientError({"Error": {"Code": code, "Message": "slow down"},
                       "ResponseMetadata": {"HTTPStatusCode": status}}, "RunInstances")
    assert is_transient(err)
    translated = translate(err, "RunInstances")
    assert isinstance(translated, TransientAwsError)
    assert str(translated) == f"RunInstances: {code}: slow down"


def test_a_client_error_below_500_is_not_transient() -> None:
    err = ClientError({"Error": {"Code": "InvalidAMIID.Malformed", "Message": "bad"},
                       "ResponseMetadata": {"HTTPStatusCode": 400}}, "DescribeImages")
    translated = translate(err, "DescribeImages")
    assert isinstance(translated, AwsCallFailed) and translated.code == "InvalidAMIID.Malformed"
