"""Messages that fail come back, and the ones that keep failing reach the DLQ, as on AWS: a worker
past its timeout is killed and its batch delivered again; a poison message reaches the DLQ after
`maxReceiveCount` receives, its batch neighbours are written meanwhile, and once the cause is fixed
`python -m ingest dlq redrive` (run as an operator does, in its own process) brings it home; the
table then matches the oracle.

The stack of this module has a worker timeout of 2 s and no batching window, so the queue's
visibility timeout (six times the timeout plus the window) is 12 s and a chunk failing every time
reaches the DLQ within about a minute; chunks of 20 rows, so that one file makes several messages
to share a batch with the poison.

The poison is a chunk its job record no longer agrees with: the job's `expiresAt` moved after the
producer sent the chunk, as a hand edit of the record would. The worker refuses such a chunk whole
(README, "What the worker accepts"), every time it comes, until the record is put back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra.config import load_config
from local.project import PROJECT, stack_settings
from tests.evidence import Proof
from tests.ingest.conftest import local_command
from tests.local.support import LocalStackProcess, dead_letter_count, job_id_for, local_stack, wait_for
from tests.reliability.oracle import Upload, expect, generate, settle, stored_job, stored_users, verify

pytestmark = pytest.mark.long(seconds=100)

SETTINGS = (
    "--set",
    "workerTimeoutSeconds=2",
    "--set",
    "workerBatchingWindowSeconds=0",
    "--set",
    "rowsPerMessage=20",
    "--retry-delays",
    "1,2",
)
# dev's maxReceiveCount, as the program reads it from Pulumi.dev.yaml.
MAX_RECEIVE_COUNT = load_config(lambda key: stack_settings("dev").get(f"{PROJECT}:{key}")).max_receive_count

POISON = Proof(
    "RELIABILITY",
    "Faults",
    "a poison message, then the fix and `dlq redrive`",
    injected="a 20-row file's one chunk made unacceptable (its job's expiresAt moved after it was sent) and"
    " queued with the 7 chunks of a 150-row file; after the DLQ, the record restored and"
    " `python -m ingest dlq redrive` run",
    held=f"the poison chunk reached the DLQ after {MAX_RECEIVE_COUNT} receives with none of its rows written while its"
    " neighbours' job completed exactly; redriven after the fix, it completed and both domains match the oracle",
    figures={"messages redriven": 1, "rows checked": 151},
    test="test_a_poison_chunk_rests_in_the_dlq_its_neighbours_are_written_and_a_redrive_brings_it_home",
)
TIMED_OUT = Proof(
    "RELIABILITY",
    "Faults",
    "a worker invocation past its timeout",
    injected="the worker's first BatchExecuteStatement of a 50-row file stalled 5 s, past its 2 s timeout",
    held="the invocation was ended at its timeout, its batch came back after the visibility timeout, and the"
    " job completed with every row written",
    figures={"rows uploaded": 50, "rows checked": 49},
    test="test_a_worker_past_its_timeout_is_killed_and_its_messages_come_again",
)
PROOFS = [TIMED_OUT, POISON]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    with local_stack(tmp_path_factory.mktemp("reliability-dead-letters"), *SETTINGS) as running:
        yield running


def test_a_worker_past_its_timeout_is_killed_and_its_messages_come_again(local: LocalStackProcess) -> None:
    domain = "slow.example.com"
    upload = Upload("uploads/slow.csv", generate(domain, 50, seed=23))
    # The worker's first write stalls for 5 s: its 2 s timeout ends the invocation first.
    local.fault(service="dynamodb", action="BatchExecuteStatement", delay_seconds=5, times=1, principal="worker")
    job_id = job_id_for(local.outputs["bucketName"], upload.key, local.upload(upload.key, upload.body))

    settle(local, [job_id], timeout=90)

    verdict = verify(local, expect([upload]), [job_id], domain)
    assert verdict.holds, str(verdict)
    assert "Task timed out after 2" in local.log("worker")
    assert {"rows uploaded": 50, "rows checked": verdict.rows_checked} == TIMED_OUT.figures  # 49: a repeated email


def _set_expiry(local: LocalStackProcess, job_id: str, expires_at: int) -> None:
    """Overwrite a job record's `expiresAt`, as the local administrator."""
    local.client("dynamodb").update_item(
        TableName=local.outputs["jobsTableName"],
        Key={"jobId": {"S": job_id}, "sk": {"S": "JOB"}},
        UpdateExpression="SET expiresAt = :e",
        ExpressionAttributeValues={":e": {"N": str(expires_at)}},
    )


def _queued(local: LocalStackProcess, job_id: str) -> bool:
    return (stored_job(local, job_id) or {}).get("status") == "QUEUED"


def _dead_letters(local: LocalStackProcess) -> list[dict[str, Any]]:
    peeked = local_command(local, "dlq", "peek", "--json")
    assert peeked.returncode == 0, peeked.stderr
    return json.loads(peeked.stdout)


def test_a_poison_chunk_rests_in_the_dlq_its_neighbours_are_written_and_a_redrive_brings_it_home(
    local: LocalStackProcess,
) -> None:
    poisoned = Upload("uploads/dead/poisoned.csv", generate("dead.example", 20, seed=21))
    neighbours = Upload("uploads/dead/neighbours.csv", generate("neighbours.example", 150, seed=22, invalid_every=10))
    bucket = local.outputs["bucketName"]
    # GIVEN the worker's pollers held back until both files' chunks wait in the queue together
    local.hold_receives("worker")
    try:
        poisoned_id, neighbours_id = (
            job_id_for(bucket, upload.key, local.upload(upload.key, upload.body)) for upload in (poisoned, neighbours)
        )
        wait_for(lambda: _queued(local, poisoned_id) and _queued(local, neighbours_id), 60, "both files queued")
        record = stored_job(local, poisoned_id)
        assert record is not None and record["chunksTotal"] == 1
        # WHEN the poisoned job's record stops agreeing with its chunk
        original_expiry = record["expiresAt"]
        _set_expiry(local, poisoned_id, original_expiry + 1)
    finally:
        local.clear_faults()

    # THEN the neighbours are written exactly, the poison's rows not at all, and the poison rests in the DLQ
    settle(local, [neighbours_id], timeout=90)
    alone = verify(local, expect([neighbours]), [neighbours_id], "neighbours.example")
    assert alone.holds, str(alone)
    wait_for(lambda: dead_letter_count(local) > 0, 150, "the poison chunk in the DLQ", interval=1)
    letters = _dead_letters(local)
    assert [(letter["jobId"], letter["chunk"]) for letter in letters] == [(poisoned_id, 0)], letters
    assert letters[0]["receiveCount"] >= MAX_RECEIVE_COUNT
    assert stored_users(local, "dead.example") == {}
    assert stored_job(local, poisoned_id)["status"] == "QUEUED"  # type: ignore[index]

    # WHEN the cause is fixed and the operator redrives
    _set_expiry(local, poisoned_id, original_expiry)
    redriven = local_command(local, "dlq", "redrive", "--json")

    # THEN the chunk comes home and both files end as the oracle says
    assert redriven.returncode == 0, redriven.stderr
    moved = json.loads(redriven.stdout)["moved"]
    settle(local, [poisoned_id, neighbours_id], timeout=90)
    expectation = expect([poisoned, neighbours])
    verdicts = [
        verify(local, expectation, [poisoned_id, neighbours_id], domain)
        for domain in ("dead.example", "neighbours.example")
    ]
    assert all(verdict.holds for verdict in verdicts), "\n".join(map(str, verdicts))
    assert dead_letter_count(local) == 0
    assert (moved, sum(v.rows_checked for v in verdicts)) == (
        POISON.figures["messages redriven"],
        POISON.figures["rows checked"],
    )
