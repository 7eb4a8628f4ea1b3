"""Faults injected into a running stack through local mode's hooks (`local.emulator.Fault`,
`DeliveryFault`, `KillFault`), each scenario run to the end and compared with the oracle
(`tests/reliability/oracle.py`): no row lost, none stale, none extra, every job's counts exact.

One dev stack for the module: chunks of 20 rows (a file makes many messages), a worker that does
not wait for a batch to fill and times out after 10 s (so the queue's visibility timeout, six times
that, is 60 s: a batch whose invocation died comes back within the scenario, and a worker slowed by
a loaded machine still finishes its batch in time), a producer timeout of
10 s and asynchronous retries after 1 and 2 s instead of Lambda's minutes. Each scenario has its own
email domain, asserts how often each fault hit (the figures of its proof), and leaves the stack with
no fault and an empty queue.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from tests.evidence import Proof
from tests.local.support import LocalStackProcess, local_stack, wait_for
from tests.reliability.faults import SETTINGS, ends_as_the_oracle_says, quiet_around, upload_all
from tests.reliability.oracle import Upload, Verdict, expect, generate

pytestmark = pytest.mark.long(seconds=140)


DUPLICATED = Proof(
    "RELIABILITY",
    "Faults",
    "every message delivered twice, and deliveries reordered",
    injected="the worker's event source hands every batch to two invocations at once, delivers the batch"
    " waiting behind it first and shuffles each batch's records (seeded); three 600-row files sharing emails",
    held="the table and the three jobs match the oracle: each chunk counted once, the later upload and row winning",
    figures={"files": 3, "rows uploaded": 1800, "rows checked": 1333, "messages delivered twice": 87},
    test="test_every_message_delivered_twice_and_out_of_order_ends_as_the_oracle_says",
)
WORKER_KILLED = Proof(
    "RELIABILITY",
    "Faults",
    "the worker process killed in the middle of a batch, several times",
    injected="three worker invocations SIGKILLed 0.5 s into their batch (the worker's first six counting"
    " transactions delayed 1 s, so the kills land with rows written and chunks not yet counted)",
    held="the killed batches came back after the visibility timeout; table and job counts match the oracle",
    figures={"rows uploaded": 1500, "rows checked": 1441, "processes killed": 3},
    test="test_worker_killed_mid_batch_several_times_loses_and_double_counts_nothing",
)
ERROR_RATES = Proof(
    "RELIABILITY",
    "Faults",
    "DynamoDB throttling and SQS errors injected at a rate",
    injected="20 % (seeded) of a window of the worker's BatchExecuteStatement"
    " (ProvisionedThroughputExceededException) and TransactWriteItems (ThrottlingException),"
    " ReceiveMessage and DeleteMessageBatch (InternalError, 500) calls and of the producer's SendMessageBatch"
    " calls (RequestThrottled)",
    held="every injected error was retried or redelivered; table and job counts match the oracle",
    figures={"rows uploaded": 2000, "rows checked": 1903, "calls in the windows": 235, "errors injected": 36},
    test="test_throttling_and_sqs_errors_at_a_rate_lose_nothing",
)
PRODUCER_REDELIVERED = Proof(
    "RELIABILITY",
    "Faults",
    "the producer stopped in the middle of a large file, then the S3 event delivered again",
    injected="the producer's process SIGKILLed 1 s into a 2,000-row file (its SendMessageBatch calls slowed to"
    " 0.8 s, so the file takes longer), and S3's event delivered a second time 2 s after the first (a new"
    " invocation, as S3's at-least-once delivery can)",
    held="the redelivered event and Lambda's retry resumed from the checkpoint under one lease; the job's"
    " counts and the table match the oracle",
    figures={"rows uploaded": 2000, "rows checked": 1913, "processes killed": 1, "events delivered again": 1},
    test="test_producer_killed_mid_file_then_its_s3_event_delivered_again_ends_once",
)
PRODUCER_LEASE = Proof(
    "RELIABILITY",
    "Faults",
    "a producer invocation killed (as for out-of-memory) holding its job's lease",
    injected="the producer's first attempt and Lambda's first retry (same request id) SIGKILLed 1 s in,"
    " each holding the job's lease, on a 2,000-row file whose SendMessageBatch calls are slowed to 0.8 s",
    held="Lambda's second retry took its own lease over and finished the job; table and counts match the oracle",
    figures={"rows uploaded": 2000, "rows checked": 1912, "processes killed": 2},
    test="test_producer_killed_holding_its_lease_still_ends_the_job",
)
STATEMENT_ERRORS = Proof(
    "RELIABILITY",
    "Faults",
    "statements inside the worker's batches throttled or failing, the others written",
    injected="a window of the PartiQL statements of the worker's BatchExecuteStatement calls answered with"
    " their own error while the rest of each batch ran (local mode's statement fault, as DynamoDB reports a"
    " statement in BatchStatementError): 20 % ThrottlingError, then 10 % InternalServerError (seeded);"
    " two files sharing emails",
    held="each failed statement was sent again alone, after a backoff, within its invocation; table and job"
    " counts match the oracle",
    figures={"rows uploaded": 1200, "rows checked": 891, "statements in the windows": 900, "errors injected": 155},
    test="test_statements_failing_inside_a_batch_are_sent_again_and_lose_nothing",
)
PROOFS = [DUPLICATED, WORKER_KILLED, ERROR_RATES, STATEMENT_ERRORS, PRODUCER_REDELIVERED, PRODUCER_LEASE]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    with local_stack(tmp_path_factory.mktemp("injected-faults"), *SETTINGS) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(local: LocalStackProcess) -> Iterator[None]:
    """Every scenario starts and ends with no fault in force and nothing left on the queue."""
    yield from quiet_around(local)


def _windows_spent_ending_as_the_oracle_says(
    local: LocalStackProcess, uploads: Sequence[Upload], domain: str, kind: str, windows: int
) -> tuple[Verdict, int]:
    """Upload, end as the oracle says, and wait for every fault window of `kind` (`windows` requests or
    statements in all) to be spent; the verdict and how many errors were injected (some, not all)."""
    job_ids = upload_all(local, uploads)
    verdict = ends_as_the_oracle_says(local, uploads, job_ids, domain)
    wait_for(lambda: local.active_faults() == [], 60, "every fault window to be spent")
    injected = sum(count for _, count in _applied(local, kind))
    assert 0 < injected < windows
    return verdict, injected


def _applied(local: LocalStackProcess, kind: str) -> list[tuple[dict[str, Any], int]]:
    return [(fault, count) for fault, count in local.applied_faults() if fault["kind"] == kind]


def _rows(uploads: Sequence[Upload]) -> int:
    return sum(job.rows_total for job in expect(uploads).jobs)


def test_every_message_delivered_twice_and_out_of_order_ends_as_the_oracle_says(local: LocalStackProcess) -> None:
    domain = "twice.example.com"
    shared = [f"shared{n}@{domain}" for n in range(40)]
    uploads = [
        Upload(f"uploads/twice-{n}.csv", generate(domain, 600, seed=100 + n, invalid_every=30, shared=shared))
        for n in range(3)
    ]
    local.fault(kind="delivery", source="sqs", function="worker", duplicate=True, reorder=True, seed=11)

    job_ids = upload_all(local, uploads)
    verdict = ends_as_the_oracle_says(local, uploads, job_ids, domain)

    # The fault was in force for every delivery: each chunk went to two invocations at least once
    # (more when a batch failed and came back, which a loaded machine may cause).
    [(_, twice)] = _applied(local, "delivery")
    chunks = sum(int((local.job(job_id) or {})["chunksTotal"]) for job_id in job_ids)
    assert twice >= chunks
    figures = {"files": 3, "rows uploaded": _rows(uploads), "rows checked": verdict.rows_checked}
    assert {**figures, "messages delivered twice": chunks} == DUPLICATED.figures


def test_worker_killed_mid_batch_several_times_loses_and_double_counts_nothing(local: LocalStackProcess) -> None:
    domain = "killed-worker.example.com"
    uploads = [Upload("uploads/killed-worker.csv", generate(domain, 1500, seed=200, invalid_every=40))]
    local.fault(service="dynamodb", action="TransactWriteItems", delay_seconds=1.0, principal="worker", times=6)
    local.fault(kind="kill", function="worker", after_seconds=0.5, times=3)

    job_ids = upload_all(local, uploads)
    verdict = ends_as_the_oracle_says(local, uploads, job_ids, domain)

    [(_, killed)] = _applied(local, "kill")
    assert local.log("worker").count("Runtime exited with error: signal: killed") == killed
    figures = {"rows uploaded": _rows(uploads), "rows checked": verdict.rows_checked, "processes killed": killed}
    assert figures == WORKER_KILLED.figures


# (service, action, error code, whose calls, window): the window is sized under the calls the
# scenario makes for certain, so each one is spent and the count of errors is its seed's.
ERROR_WINDOWS = (
    ("dynamodb", "BatchExecuteStatement", "ProvisionedThroughputExceededException", "worker", 60),
    ("dynamodb", "TransactWriteItems", "ThrottlingException", "worker", 60),
    ("sqs", "ReceiveMessage", "InternalError", "worker", 100),
    ("sqs", "DeleteMessage", "InternalError", "worker", 10),
    ("sqs", "SendMessage", "RequestThrottled", "producer", 5),
)


def test_throttling_and_sqs_errors_at_a_rate_lose_nothing(local: LocalStackProcess) -> None:
    domain = "throttled.example.com"
    uploads = [Upload("uploads/throttled.csv", generate(domain, 2000, seed=300, invalid_every=50))]
    for n, (service, action, code, principal, window) in enumerate(ERROR_WINDOWS):
        local.fault(
            service=service, action=action, error_code=code, principal=principal, rate=0.2, times=window, seed=n
        )

    windows = sum(window for *_, window in ERROR_WINDOWS)
    verdict, injected = _windows_spent_ending_as_the_oracle_says(local, uploads, domain, "request", windows)
    figures = {"rows uploaded": _rows(uploads), "rows checked": verdict.rows_checked}
    assert {**figures, "calls in the windows": windows, "errors injected": injected} == ERROR_RATES.figures


# (error code, rate, window): statement faults, each looking at its window of statements — sized under
# the statements the scenario sends for certain (its rows' statements, before any is sent again), so each
# window is spent and the count of errors is its seed's.
STATEMENT_WINDOWS = (("ThrottlingError", 0.2, 600), ("InternalServerError", 0.1, 300))


def test_statements_failing_inside_a_batch_are_sent_again_and_lose_nothing(local: LocalStackProcess) -> None:
    domain = "statements.example.com"
    shared = [f"shared{n}@{domain}" for n in range(50)]
    uploads = [
        Upload(f"uploads/statements-{n}.csv", generate(domain, 600, seed=350 + n, invalid_every=25, shared=shared))
        for n in range(2)
    ]
    for n, (code, rate, window) in enumerate(STATEMENT_WINDOWS):
        local.fault(kind="statement", error_code=code, rate=rate, times=window, seed=n)

    windows = sum(window for *_, window in STATEMENT_WINDOWS)
    verdict, injected = _windows_spent_ending_as_the_oracle_says(local, uploads, domain, "statement", windows)
    assert "WriteThrottles" in local.log("worker")
    figures = {"rows uploaded": _rows(uploads), "rows checked": verdict.rows_checked}
    assert {**figures, "statements in the windows": windows, "errors injected": injected} == STATEMENT_ERRORS.figures


def _slow_producer_sends(local: LocalStackProcess) -> None:
    """Every SendMessageBatch of the producer takes 0.8 s: the file's 100 chunks, 10 a call and 4 calls in
    flight, take its invocation three rounds, at least 2.4 s, so a kill 1 s in lands in the middle of the
    file however fast or loaded the machine is."""
    local.fault(service="sqs", action="SendMessage", delay_seconds=0.8, principal="producer")


def test_producer_killed_mid_file_then_its_s3_event_delivered_again_ends_once(local: LocalStackProcess) -> None:
    domain = "redelivered.example.com"
    uploads = [Upload("uploads/redelivered.csv", generate(domain, 2000, seed=400, invalid_every=60))]
    _slow_producer_sends(local)
    local.fault(kind="kill", function="producer", after_seconds=1.0, times=1)
    local.fault(kind="delivery", source="s3", function="producer", duplicate=True, delay_seconds=2.0, times=1)

    job_ids = upload_all(local, uploads)
    verdict = ends_as_the_oracle_says(local, uploads, job_ids, domain)

    [(_, killed)] = _applied(local, "kill")
    [(_, again)] = _applied(local, "delivery")
    figures = {"rows uploaded": _rows(uploads), "rows checked": verdict.rows_checked}
    assert {**figures, "processes killed": killed, "events delivered again": again} == PRODUCER_REDELIVERED.figures


def test_producer_killed_holding_its_lease_still_ends_the_job(local: LocalStackProcess) -> None:
    domain = "lease.example.com"
    uploads = [Upload("uploads/lease.csv", generate(domain, 2000, seed=500, invalid_every=45))]
    _slow_producer_sends(local)
    local.fault(kind="kill", function="producer", after_seconds=1.0, times=2)

    job_ids = upload_all(local, uploads)
    verdict = ends_as_the_oracle_says(local, uploads, job_ids, domain)

    [(_, killed)] = _applied(local, "kill")
    log = local.log("lambda")
    assert "retry 2 of 2" in log  # Lambda retried the attempt, and its retry, that were killed
    figures = {"rows uploaded": _rows(uploads), "rows checked": verdict.rows_checked, "processes killed": killed}
    assert figures == PRODUCER_LEASE.figures
