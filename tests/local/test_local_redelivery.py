"""Messages that fail come back, and the ones that keep failing reach the DLQ, as on AWS.

The stack's worker timeout is cut to 2 s and its batching window to 0 for this module, so the
queue's visibility timeout (six times the timeout plus the window: 12 s) lets a message be
received `maxReceiveCount` (5) times within a minute.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.local.support import LocalStackProcess, csv_bytes, job_id_for, local_stack, wait_for


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    state = tmp_path_factory.mktemp("local-redelivery")
    settings = ("--set", "workerTimeoutSeconds=2", "--set", "workerBatchingWindowSeconds=0")
    with local_stack(state, *settings, "--retry-delays", "1,2") as running:
        yield running


def _rows(domain: str, count: int) -> list[list[str]]:
    return [[f"Name {n}", f"u{n}@{domain}", ""] for n in range(count)]


def _stored(local: LocalStackProcess, domain: str) -> set[str]:
    dynamodb = local.client("dynamodb")
    emails = set()
    for page in dynamodb.get_paginator("scan").paginate(TableName=local.outputs["usersTableName"]):
        emails |= {item["email"]["S"] for item in page["Items"] if item["email"]["S"].endswith("@" + domain)}
    return emails


def test_a_worker_past_its_timeout_is_killed_and_its_messages_come_again(local: LocalStackProcess) -> None:
    domain = "slow.example.com"
    # The worker's first write stalls for 5 s: its 2 s timeout ends the invocation first.
    local.fault(service="dynamodb", action="PutItem", delay_seconds=5, times=1, principal="worker")
    key = "uploads/slow.csv"
    version = local.upload(key, csv_bytes(["name", "mail", "phone"], _rows(domain, 50)))

    job = local.finished_job(job_id_for(local.outputs["bucketName"], key, version), timeout=90)

    assert job["status"] == "COMPLETE"
    assert _stored(local, domain) == {f"u{n}@{domain}" for n in range(50)}
    assert "Task timed out after 2" in local.log("worker")


def test_a_poison_message_reaches_the_dlq_and_its_batch_neighbours_are_written(local: LocalStackProcess) -> None:
    domain = "poison.example.com"
    sqs = local.client("sqs")
    # Hold the worker's pollers back until the file's chunks and the poison wait in the queue
    # together, so that they arrive in one batch.
    local.hold_receives("worker")
    try:
        poison = sqs.send_message(QueueUrl=local.outputs["queueUrl"], MessageBody='{"v": 1, "not": "a chunk"}')
        key = "uploads/neighbours.csv"
        version = local.upload(key, csv_bytes(["name", "mail", "phone"], _rows(domain, 300)))
        job_id = job_id_for(local.outputs["bucketName"], key, version)
        wait_for(lambda: (local.job(job_id) or {}).get("status") == "QUEUED", 60, "the file's chunks to be queued")
    finally:
        local.clear_faults()

    job = local.finished_job(job_id, timeout=60)
    assert job["status"] == "COMPLETE"
    assert _stored(local, domain) == {f"u{n}@{domain}" for n in range(300)}

    def in_dlq() -> dict[str, Any] | None:
        messages = sqs.receive_message(
            QueueUrl=local.outputs["deadLetterQueueUrl"], MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        return next((m for m in messages if m["MessageId"] == poison["MessageId"]), None)

    dead = wait_for(in_dlq, 120, "the poison message in the DLQ", interval=1)
    assert json.loads(dead["Body"]) == {"v": 1, "not": "a chunk"}
    assert int(dead["Attributes"]["ApproximateReceiveCount"]) >= 5
