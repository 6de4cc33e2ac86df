"""aws/dynamo.py: plain Python values through the local cloud's DynamoDB and back."""

from __future__ import annotations

from typing import Any

import boto3
from tests.functional.aws.dynamo_tables import new_table

from amiforge.aws.dynamo import deserialize, serialize, value


def test_values_round_trip_through_dynamodb(local_cloud: Any) -> None:
    db = boto3.client("dynamodb", region_name=local_cloud.region,
                      endpoint_url=local_cloud.endpoint)
    table = new_table(db, "CatalogTable", indexes=False)
    record = {"recipe": "web", "build_id": "b", "launches": 3, "ratio": 0.25,
              "images": {"eu-west-1": "ami-1"}, "tags": ["a", "b"], "ok": True,
              "nested": {"n": 1.5, "gone": None}, "dropped": None}
    db.put_item(TableName=table, Item=serialize(record))
    item = db.get_item(TableName=table, ConsistentRead=True,
                       Key={"recipe": value("web"), "build_id": value("b")})["Item"]
    back = deserialize(item)
    expected = {k: v for k, v in record.items() if v is not None}
    expected["nested"] = {"n": 1.5}
    assert back == expected
    assert isinstance(back["launches"], int) and isinstance(back["ratio"], float)
