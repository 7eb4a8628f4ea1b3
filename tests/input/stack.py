"""What the input tests read back from a local stack: users by e-mail domain, rejects reports, and
every text that must hold no cell of an upload."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
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


def searched_texts(local: LocalStackProcess, job_ids: Iterable[str]) -> dict[str, str]:
    """Everything that must hold no cell, by where it came from: the state folder's log files, the
    console, every CloudWatch log group, the jobs table, and `GET /jobs/{jobId}` of each job."""
    texts = {str(path.name): path.read_text(errors="replace") for path in sorted((local.state / "logs").glob("*"))}
    texts["console"] = local.console_text()
    logs = local.client("logs")
    for group in logs.describe_log_groups()["logGroups"]:
        name = group["logGroupName"]
        events = [
            event["message"]
            for page in logs.get_paginator("filter_log_events").paginate(logGroupName=name)
            for event in page["events"]
        ]
        texts[f"CloudWatch {name}"] = "\n".join(events)
    dynamodb = local.client("dynamodb")
    texts["jobs table"] = "\n".join(
        json.dumps(item, ensure_ascii=False)
        for page in dynamodb.get_paginator("scan").paginate(TableName=local.outputs["jobsTableName"])
        for item in page["Items"]
    )
    texts["GET /jobs/{jobId}"] = "\n".join(
        json.dumps(local.api(f"/jobs/{job_id}").body, ensure_ascii=False) for job_id in job_ids
    )
    return texts
