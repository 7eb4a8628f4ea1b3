"""The article's producer, in Python: one SQS message per valid row, sent ten to a SendMessageBatch call.

Its flaws are the point (SEED-NOTES.md): no job, no rejects report, no idempotency, no continuation.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import urllib.parse
from datetime import UTC, datetime
from typing import Any

import boto3

sqs = boto3.client("sqs")
s3 = boto3.client("s3")
BATCH_SIZE = 10


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    record = event["Records"][0]["s3"]
    bucket, key = record["bucket"]["name"], urllib.parse.unquote_plus(record["object"]["key"])
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    rows = csv.DictReader(codecs.getreader("utf-8")(body))
    batch: list[dict[str, str]] = []
    total = sent = skipped = 0
    for number, row in enumerate(rows, start=1):
        total += 1
        if not row.get("name") or not row.get("mail"):
            skipped += 1
            continue
        message = {
            "name": row["name"].strip(),
            "mail": row["mail"].strip().lower(),
            "phone": (row.get("phone") or "").strip(),
            "processedAt": datetime.now(UTC).isoformat(),
            "rowNumber": number,
        }
        batch.append({"Id": str(len(batch)), "MessageBody": json.dumps(message)})
        if len(batch) == BATCH_SIZE:
            sent += _send(batch)
            batch = []
    if batch:
        sent += _send(batch)
    return {"totalRows": total, "validRows": total - skipped, "skippedRows": skipped, "messagesSent": sent}


def _send(entries: list[dict[str, str]]) -> int:
    sqs.send_message_batch(QueueUrl=os.environ["QUEUE_URL"], Entries=entries)
    return len(entries)
