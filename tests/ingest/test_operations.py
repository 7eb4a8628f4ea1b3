"""The operator's commands, through their own process: `plan`, `demo`, `dlq peek` and `dlq redrive`.

The dlq tests share one local stack whose worker timeout is 2 s and batching window 0, so the
queue's visibility timeout is 12 s and a chunk that keeps failing reaches the DLQ after its 5
receives within about a minute. The demo starts (and must stop) a stack of its own.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ingest.conftest import local_command, run_ingest
from tests.local.support import (
    LocalStackProcess,
    csv_bytes,
    dead_letter_count,
    job_id_for,
    local_processes,
    local_stack,
    wait_for,
)

pytestmark = pytest.mark.long(seconds=140)

# --- plan -------------------------------------------------------------------------------------------


def test_plan_prints_the_resource_tree_and_the_outputs() -> None:
    result = run_ingest("plan", "--stack", "dev")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Stack dev: ") and lines[0].endswith(" resources would be created")
    assert "csv-ingest:index:Pipeline  csv-ingest" in lines
    # A tree: the worker function is drawn inside the Worker component.
    worker = lines.index("  csv-ingest:ingest:Worker  csv-ingest-worker")
    function = next(
        n
        for n, line in enumerate(lines)
        if line.lstrip().startswith("aws:lambda/function:Function  csv-ingest-worker ")
    )
    assert function > worker and lines[function].startswith("    ")
    outputs = lines[lines.index("Outputs:") + 1 :]
    assert "  apiKey: [secret]" in outputs
    assert any(line.startswith("  workerLogGroupName: csv-ingest-worker-logs") for line in outputs)


def test_plan_with_an_invalid_setting_exits_2_with_the_programs_message() -> None:
    result = run_ingest("plan", "--set", "workerMemoryMb=5")

    assert result.returncode == 2
    assert result.stdout == ""
    assert "csv-ingest:workerMemoryMb = 5 is out of range; allowed: 128–10240" in result.stderr


# --- demo -------------------------------------------------------------------------------------------


def test_the_demo_runs_end_to_end_and_leaves_nothing_running(tmp_path: Path) -> None:
    state = tmp_path / "demo-state"

    result = run_ingest("demo", "--rows", "2000", "--state-dir", str(state), timeout=600)

    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    summary = result.stdout[result.stdout.rindex("Summary") :].splitlines()
    sample = next(line for line in summary if "the article's sample" in line)
    assert "COMPLETE, 10 rows, 10 valid, 0 rejected, 10 written" in sample
    # The Excel export (UTF-8 with a byte order mark, CRLF, semicolons, `E-mail`) is read as it is,
    # its names in Unicode.
    excel = next(line for line in summary if "an Excel export (semicolons)" in line)
    assert "COMPLETE, 5 rows, 5 valid, 0 rejected, 5 written" in excel
    assert "$ python -m ingest get zoe.lefevre@excel.example.com --local --stack dev" in result.stdout
    assert "Zoë Lefèvre" in result.stdout
    generated = _counts(next(line for line in summary if "generated file of 2,000 rows" in line))
    assert generated["rows"] == 2000 and generated["rejected"] > 0 and generated["superseded"] > 0
    assert generated["valid"] + generated["rejected"] == generated["rows"]
    assert generated["written"] + generated["superseded"] == generated["valid"]
    # The queries ran and printed what they found: the sample's first user, and the job's rejects.
    assert "$ python -m ingest get john@gmail.com --local --stack dev" in result.stdout
    assert "John Doe" in result.stdout
    assert f"{generated['rejected']} rejected row(s) of job " in result.stdout
    assert "Local mode stopped." in result.stdout
    assert local_processes(str(state)) == []
    assert not (state / "dev" / "outputs.json").exists()


def _counts(line: str) -> dict[str, int]:
    """`…: COMPLETE_WITH_REJECTS, 2000 rows, 1900 valid, …` as {"rows": 2000, "valid": 1900, …}."""
    counts = {}
    for part in line.split(", "):
        number, _, what = part.strip().partition(" ")
        if number.isdigit():
            counts[what.split(" ")[0]] = int(number)
    return counts


# --- dlq --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    state = tmp_path_factory.mktemp("local-operations")
    settings = ("--set", "workerTimeoutSeconds=2", "--set", "workerBatchingWindowSeconds=0")
    with local_stack(state, *settings) as running:
        yield running


def dlq(local: LocalStackProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return local_command(local, "dlq", *args)


def _peeked(local: LocalStackProcess, *args: str) -> list[dict[str, Any]]:
    result = dlq(local, "peek", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _drain(local: LocalStackProcess) -> None:
    """Delete whatever the DLQ holds (PurgeQueue is allowed once a minute, as on AWS)."""
    sqs, url = local.client("sqs"), local.outputs["deadLetterQueueUrl"]
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _stored(local: LocalStackProcess, domain: str) -> set[str]:
    emails = set()
    for page in local.client("dynamodb").get_paginator("scan").paginate(TableName=local.outputs["usersTableName"]):
        emails |= {item["email"]["S"] for item in page["Items"] if item["email"]["S"].endswith("@" + domain)}
    return emails


def test_a_poisoned_chunk_is_peeked_with_its_cause_and_redriven_home_once_fixed(local: LocalStackProcess) -> None:
    domain = "denied.example.com"
    rows = [[f"Name {n}", f"u{n}@{domain}", ""] for n in range(30)]
    # GIVEN the worker may not write users: every delivery of the file's one chunk fails.
    # (Its hints, if the worker reads them, and its statements: both are the users table's.)
    for action in ("BatchGetItem", "BatchExecuteStatement"):
        local.fault(service="dynamodb", action=action, error_code="AccessDeniedException", principal="worker")
    try:
        key = "uploads/denied.csv"
        version = local.upload(key, csv_bytes(["name", "mail", "phone"], rows))
        job_id = job_id_for(local.outputs["bucketName"], key, version)
        wait_for(lambda: dead_letter_count(local) > 0, 150, "the chunk in the DLQ", interval=1)

        # WHEN the operator peeks
        peeked = [letter for letter in _peeked(local) if letter["jobId"] == job_id]
        human = dlq(local, "peek")
    finally:
        local.clear_faults()  # the cause is fixed

    # THEN the chunk is there with its job, its rows, its receives and the worker's own words
    assert len(peeked) == 1, peeked
    letter = peeked[0]
    assert letter["chunk"] == 0 and letter["rows"] == 30
    assert [row["email"] for row in letter["firstRows"]] == [f"u{n}@{domain}" for n in range(3)]
    assert letter["receiveCount"] >= 5
    assert letter["error"].startswith("chunk failed: ")
    assert "AccessDeniedException" in letter["error"]
    assert "BatchGetItem" in letter["error"] or "BatchExecuteStatement" in letter["error"]
    assert human.returncode == 0, human.stderr
    assert f"job {job_id}  chunk 0" in human.stdout
    assert "why: chunk failed: " in human.stdout
    # A peek consumes nothing.
    assert [m["messageId"] for m in _peeked(local)] == [letter["messageId"]]

    # WHEN the operator redrives
    redriven = dlq(local, "redrive", "--json")

    # THEN the chunk goes home, the job completes and its users are written
    assert redriven.returncode == 0, redriven.stderr
    assert json.loads(redriven.stdout) == {"status": "COMPLETED", "moved": 1, "toMove": 1, "failureReason": None}
    job = local.finished_job(job_id, timeout=60)
    assert (job["status"], job["rowsWritten"]) == ("COMPLETE", 30)
    assert _stored(local, domain) == {f"u{n}@{domain}" for n in range(30)}
    assert _peeked(local) == []


def test_peek_shows_more_than_ten_messages_and_bodies_that_are_not_chunks(local: LocalStackProcess) -> None:
    sqs = local.client("sqs")
    url = local.outputs["deadLetterQueueUrl"]
    sent = {sqs.send_message(QueueUrl=url, MessageBody=f"not a chunk {n}")["MessageId"] for n in range(12)}
    try:
        first = _peeked(local, "--max", "20")
        second = _peeked(local, "--max", "20")  # what a peek hid, it made visible again

        assert {m["messageId"] for m in first} == {m["messageId"] for m in second} == sent
        letter = first[0]
        assert (letter["jobId"], letter["chunk"], letter["firstRows"]) == (None, None, [])
        assert letter["bodyPreview"].startswith("not a chunk ")
        assert letter["error"] is None
        assert len(_peeked(local, "--max", "5")) == 5
    finally:
        _drain(local)


def test_redrive_of_an_empty_dead_letter_queue_moves_nothing(local: LocalStackProcess) -> None:
    _drain(local)

    result = dlq(local, "redrive")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Redrive completed: 0 message(s) moved back to the queue."
