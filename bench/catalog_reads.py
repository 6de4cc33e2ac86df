"""Items the catalog reads for what `amiforge status` shows (each recipe's newest build and
its `latest` image), `history --limit 5` and `find_key`, at 10 and 10,000 builds of one
recipe, on the local cloud's DynamoDB with the template's own table definition.

Prints JSON: {"status_items_read_10": .., "status_items_read_10000": .., ...}. The figures
are DynamoDB's ScannedCount summed by the adapter (aws/catalog.py ``items_read``); equal
figures at both sizes are the point.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "functional" / "aws"))

from test_catalog import builds, catalog_table_spec  # noqa: E402

from amiforge.aws.catalog import Catalog  # noqa: E402
from amiforge.localcloud.server import LocalCloud  # noqa: E402


def measure(db: Any, size: int) -> dict[str, int]:
    table = f"bench-catalog-{uuid.uuid4().hex[:8]}"
    db.create_table(TableName=table, **catalog_table_spec())
    catalog = Catalog(db, table)
    catalog.put_many(builds("web", size))
    out = {}
    for name, read in (("status", lambda: (catalog.history("web", limit=1),
                                           catalog.latest("web"))),
                       ("history_limit_5", lambda: catalog.history("web", limit=5)),
                       ("find_key", lambda: catalog.find_key("web", f"web-{size - 1:020x}"))):
        catalog.items_read = 0
        read()
        out[f"{name}_items_read_{size}"] = catalog.items_read
    return out


def main() -> None:
    cloud = LocalCloud(port=0, region="us-east-1")
    cloud.start()
    try:
        db = boto3.client("dynamodb", region_name=cloud.region, endpoint_url=cloud.endpoint,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        figures: dict[str, int] = {}
        for size in (10, 10_000):
            figures.update(measure(db, size))
    finally:
        cloud.stop()
    print(json.dumps(dict(sorted(figures.items()))))


if __name__ == "__main__":
    main()
