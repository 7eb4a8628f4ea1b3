"""What the input tests read back from a local stack: users by e-mail domain and rejects reports."""

from __future__ import annotations

import csv
import io
from typing import Any

from tests.local.support import LocalStackProcess


def users_by_domain(local: LocalStackProcess) -> dict[str, dict[str, dict[str, Any]]]:
    """Every stored user, as plain values, by e-mail domain (read with the administrator's keys)."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    dynamodb = local.client("dynamodb")
    for page in dynamodb.get_paginator("scan").paginate(TableName=local.outputs["usersTableName"]):
        for item in page["Items"]:
            email = item["email"]["S"]
            found.setdefault(email.rsplit("@", 1)[-1], {})[email] = {k: next(iter(v.values())) for k, v in item.items()}
    return found


def report_rows(local: LocalStackProcess, job: dict[str, Any] | None) -> list[dict[str, str]]:
    """The rows of a job's rejects report, every part, in row order (README "Data formats")."""
    if not job or not job.get("rejectsReport"):
        return []
    bucket, _, prefix = job["rejectsReport"].removeprefix("s3://").partition("/")
    s3 = local.client("s3")
    rows: list[dict[str, str]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            text = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode("utf-8")
            rows += list(csv.DictReader(io.StringIO(text, newline="")))
    return sorted(rows, key=lambda row: int(row["row"]))


def reasons(rows: list[dict[str, str]]) -> list[tuple[int, int, str]]:
    """(row, line, reason) of each report row."""
    return [(int(row["row"]), int(row["line"]), row["reason"]) for row in rows]
