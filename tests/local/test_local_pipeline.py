"""The dev stack in local mode, end to end: files in the bucket become users served by the API.

One stack for the module (started once, in a subprocess); each test uses its own e-mail domain so
tests do not see each other's users. Asynchronous retries are shortened (`--retry-delays 1,2`) and
the worker's batching window is 0.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.local.support import (
    REPO_ROOT,
    LocalStackProcess,
    csv_bytes,
    job_id_for,
    local_stack,
    wait_for,
)

pytestmark = pytest.mark.long(seconds=100)

SAMPLE = REPO_ROOT / "tests" / "data" / "users.csv"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    # dev as configured, but a worker that does not wait 5 s for a batch to fill: each test's file is
    # written as soon as it is queued (the window itself: tests/local/test_event_sources.py).
    settings = ("--set", "workerBatchingWindowSeconds=0", "--retry-delays", "1,2")
    with local_stack(tmp_path_factory.mktemp("local-pipeline"), *settings) as running:
        yield running


def upload_and_finish(local: LocalStackProcess, key: str, body: bytes, timeout: float = 120) -> dict[str, Any]:
    version = local.upload(key, body)
    return local.finished_job(job_id_for(local.outputs["bucketName"], key, version), timeout)


def users_of(local: LocalStackProcess, domain: str) -> dict[str, dict[str, Any]]:
    """Every stored user of an e-mail domain, read from the table with the administrator's keys."""
    dynamodb = local.client("dynamodb")
    found: dict[str, dict[str, Any]] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=local.outputs["usersTableName"]):
        for item in page["Items"]:
            email = item["email"]["S"]
            if email.endswith("@" + domain):
                found[email] = {k: next(iter(v.values())) for k, v in item.items()}
    return found


def test_the_articles_sample_becomes_ten_users_served_by_the_api(local: LocalStackProcess) -> None:
    job = upload_and_finish(local, "uploads/sample.csv", SAMPLE.read_bytes())

    assert job["status"] == "COMPLETE"
    assert (job["rowsTotal"], job["rowsValid"], job["rowsRejected"]) == (10, 10, 0)
    for line in SAMPLE.read_text().splitlines()[1:]:
        name, mail, phone = line.split(",")
        response = local.api(f"/users/{mail}")
        assert response.status == 200, response.body
        assert (response.body["name"], response.body["email"], response.body["phone"]) == (name, mail, phone)
        assert response.body["jobId"] == job["jobId"]
    sample_emails = {line.split(",")[1] for line in SAMPLE.read_text().splitlines()[1:]}
    assert listed_emails(local) >= sample_emails


def test_function_logs_reach_their_cloudwatch_log_groups(local: LocalStackProcess) -> None:
    job = upload_and_finish(local, "uploads/logged.csv", SAMPLE.read_bytes())
    logs = local.client("logs")
    groups = [group["logGroupName"] for group in logs.describe_log_groups()["logGroups"]]

    def groups_mentioning_the_job() -> list[str]:
        return [
            group
            for group in groups
            if logs.filter_log_events(logGroupName=group, filterPattern=f'"{job["jobId"]}"')["events"]
        ]

    # The producer logs the job it created and the worker each chunk it wrote, as on AWS.
    found = wait_for(lambda: len(groups_mentioning_the_job()) == 2 and groups_mentioning_the_job(), 10, "log events")
    assert any("producer" in group for group in found) and any("worker" in group for group in found)


def listed_emails(local: LocalStackProcess) -> set[str]:
    """Every e-mail `GET /users` lists, following its pages."""
    emails: set[str] = set()
    token = None
    while True:
        page = local.api("/users?limit=100" + (f"&startKey={quote(token)}" if token else ""))
        assert page.status == 200, page.body
        emails |= {user["email"] for user in page.body["items"]}
        token = page.body["nextToken"]
        if not token:
            return emails


def _big_file(domain: str, rows: int, seed: int = 7) -> tuple[bytes, dict[str, tuple[str, str]], int]:
    """A file with invalid rows and repeated e-mails; the table it must leave, and its invalid count.

    Invalid rows break one documented rule each (empty name, an address without a dotted domain,
    a five-digit phone); a repeated e-mail's last valid row is the one that must be stored.
    """
    rng = random.Random(seed)
    expected: dict[str, tuple[str, str]] = {}
    lines: list[list[str]] = []
    invalid = 0
    for n in range(rows):
        email = f"user{rng.randrange(rows * 3 // 4)}@{domain}"
        name, phone = f"Person {n}", f"+44{7000000000 + n}"
        kind = rng.random()
        if kind < 0.02:
            lines.append(["", email, phone])
        elif kind < 0.04:
            lines.append([name, f"user{n}@{domain.split('.')[0]}", phone])
        elif kind < 0.05:
            lines.append([name, email, "12345"])
        else:
            lines.append([name, email, phone])
            expected[email] = (name, phone)
            continue
        invalid += 1
    return csv_bytes(["name", "mail", "phone"], lines), expected, invalid


def test_twenty_thousand_rows_leave_exactly_the_expected_table_and_counts(local: LocalStackProcess) -> None:
    domain = "big.example.com"
    body, expected, invalid = _big_file(domain, 20_000)

    job = upload_and_finish(local, "uploads/big.csv", body, timeout=300)

    assert job["status"] == "COMPLETE_WITH_REJECTS"
    assert (job["rowsTotal"], job["rowsValid"], job["rowsRejected"]) == (20_000, 20_000 - invalid, invalid)
    assert job["chunksDone"] == job["chunksTotal"]
    stored = users_of(local, domain)
    assert {email: (user["name"], user["phone"]) for email, user in stored.items()} == expected
    assert {user["jobId"] for user in stored.values()} == {job["jobId"]}


def test_a_later_upload_of_the_same_emails_wins(local: LocalStackProcess) -> None:
    domain = "later.example.com"
    emails = [f"p{n}@{domain}" for n in range(30)]
    upload_and_finish(
        local, "uploads/first.csv", csv_bytes(["name", "mail", "phone"], [["First", e, ""] for e in emails])
    )
    second = upload_and_finish(
        local, "uploads/second.csv", csv_bytes(["name", "mail", "phone"], [["Second", e, ""] for e in emails])
    )

    stored = users_of(local, domain)
    assert {user["name"] for user in stored.values()} == {"Second"}
    assert {user["jobId"] for user in stored.values()} == {second["jobId"]}
    assert local.api(f"/users/{emails[0]}").body["name"] == "Second"


def test_the_same_file_uploaded_twice_makes_two_jobs_and_no_duplicate_users(local: LocalStackProcess) -> None:
    domain = "twice.example.com"
    body = csv_bytes(["name", "mail", "phone"], [[f"N{n}", f"u{n}@{domain}", ""] for n in range(25)])

    first = upload_and_finish(local, "uploads/twice.csv", body)
    second = upload_and_finish(local, "uploads/twice.csv", body)

    assert first["jobId"] != second["jobId"]
    assert first["status"] == second["status"] == "COMPLETE"
    stored = users_of(local, domain)
    assert len(stored) == 25
    assert {user["jobId"] for user in stored.values()} == {second["jobId"]}


def test_api_statuses_with_and_without_the_key(local: LocalStackProcess) -> None:
    upload_and_finish(
        local, "uploads/api.csv", csv_bytes(["name", "mail", "phone"], [["Ann", "ann@api.example.com", ""]])
    )

    assert local.api("/users/ann@api.example.com").status == 200
    assert local.api("/users?limit=0").status == 400
    assert local.api("/users/nobody@api.example.com").status == 404
    assert local.api("/users", method="POST", body=b"{}").status == 405
    assert local.api("/users/ann@api.example.com", key=None).status == 403
    assert local.api("/users/ann@api.example.com", key="not-the-key").status == 403


def test_requests_beyond_the_stage_throttle_get_429(local: LocalStackProcess) -> None:
    # dev: 20 requests per second, bursts of 40. 200 requests at once overrun the bucket.
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda _: local.api("/users/x@throttle.example.com").status, range(200)))

    assert 429 in statuses
    assert set(statuses) <= {404, 429}
    assert statuses.count(404) >= 40


def test_an_upload_the_producer_cannot_process_lands_in_the_failed_events_queue(local: LocalStackProcess) -> None:
    # Every read of the upload by the producer's role fails, so each attempt raises and Lambda retries it.
    local.fault(service="s3", action="GetObject", error_code="InternalError", principal="producer")
    try:
        key = "uploads/unreadable.csv"
        version = local.upload(key, csv_bytes(["name", "mail", "phone"], [["Zed", "zed@failed.example.com", ""]]))
        sqs = local.client("sqs")
        queue = local.outputs["failedUploadEventsQueueUrl"]

        def record() -> dict[str, Any] | None:
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            for message in messages:
                body = json.loads(message["Body"])
                if body["requestPayload"]["Records"][0]["s3"]["object"]["key"] == key:
                    return body
            return None

        failure = wait_for(record, 60, "the producer's failure record in the failed-events queue", interval=0.5)
    finally:
        local.clear_faults()

    assert failure["requestContext"]["condition"] == "RetriesExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 3
    assert failure["requestPayload"]["Records"][0]["s3"]["object"]["versionId"] == version
    assert failure["responseContext"]["functionError"] == "Unhandled"


def test_start_up_printed_its_time_the_resources_and_what_is_not_emulated(local: LocalStackProcess) -> None:
    console = local.console_text()
    ready = next(line for line in console.splitlines() if "ready in" in line)
    print(ready)  # the measured start-up time, for the notes

    assert local.outputs["awsEndpointUrl"] in console
    assert "aws:lambda/function:Function" in console
    assert "Not emulated" in console and "aws:cloudwatch/metricAlarm:MetricAlarm" in console
    assert Path(local.state / "logs").is_dir()
