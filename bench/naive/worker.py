"""The article's worker, in Python: each batch of messages written with one unconditional BatchWriteItem.

Its flaws are the point (SEED-NOTES.md): an older row can overwrite a newer one, unprocessed items
are dropped, a duplicate email in one batch fails the whole request.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import boto3

dynamodb = boto3.client("dynamodb")
MAX_BATCH_WRITE = 25


def handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    items = []
    for record in event["Records"]:
        body = json.loads(record["body"])
        items.append(
            {
                "PutRequest": {
                    "Item": {
                        "email": {"S": body["mail"]},
                        "name": {"S": body["name"]},
                        "phone": {"S": body["phone"] or "N/A"},
                        "createdAt": {"N": str(int(time.time()))},
                        "processedAt": {"S": body["processedAt"]},
                        "rowNumber": {"N": str(body["rowNumber"])},
                    }
                }
            }
        )
    table = os.environ["ITEMS_TABLE"]
    for start in range(0, len(items), MAX_BATCH_WRITE):
        dynamodb.batch_write_item(RequestItems={table: items[start : start + MAX_BATCH_WRITE]})
    return {"batchItemFailures": []}
