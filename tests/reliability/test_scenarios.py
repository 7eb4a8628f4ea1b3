"""Fault scenarios that need no injection hook beyond the emulator's own faults, each run to the end
and compared with the oracle (`tests/reliability/oracle.py`): no row lost, none stale, none extra,
and every job's counts exact.

One dev stack for the module, with a producer timeout of 10 s (the least allowed: an invocation
keeps 5 s in reserve, so a slow file continues in new invocations), chunks of 20 rows (more
messages per file, so a file's sends take a while when they are slowed), a worker that does not
wait for a batch to fill, and asynchronous retries within seconds. Each scenario uses its own email
domain, so the table comparison sees its rows only.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest

from tests.evidence import Proof
from tests.local.support import LocalStackProcess, job_id_for, local_stack
from tests.reliability.oracle import Upload, expect, generate, settle, stored_job, verify

pytestmark = pytest.mark.long(seconds=60)

SETTINGS = (
    "--set",
    "producerTimeoutSeconds=10",
    "--set",
    "rowsPerMessage=20",
    "--set",
    "workerBatchingWindowSeconds=0",
    "--retry-delays",
    "1,2",
)

OVERLAP = Proof(
    "RELIABILITY",
    "Faults",
    "two files with overlapping emails uploaded in quick succession, in both orders",
    injected="two 400-row files sharing 60 emails (and each repeating some of its own), uploaded one right"
    " after the other, A then B in one domain and B then A in another",
    held="each domain's table is the later upload's last valid row per email; every job's counts exact",
    figures={"files": 4, "rows uploaded": 1600, "rows checked": 1226},
    test="test_overlapping_files_in_quick_succession_end_as_the_later_upload_in_both_orders",
)
CHAIN = Proof(
    "RELIABILITY",
    "Faults",
    "a producer continuation chain over a file needing several invocations",
    injected="producer timeout 10 s (5 s of it kept in reserve), a 5,000-row file in 250 chunks, every"
    " SendMessageBatch of the producer delayed 1.5 s",
    held="the job continued through several invocations (checkpoints and continuations logged) and ended"
    " with the oracle's table and counts",
    figures={"rows uploaded": 5000, "rows checked": 4589},
    test="test_a_file_too_slow_for_one_invocation_continues_and_ends_as_one_long_pass_would",
)
TWENTY = Proof(
    "RELIABILITY",
    "Faults",
    "twenty files at once, sharing emails, while the API is read under load",
    injected="20 files of 100 rows uploaded from 20 threads at once, sharing 40 emails; 3 readers making"
    " 50 requests each to GET /users?limit=, GET /users/{email} and GET /jobs/{id} meanwhile",
    held="no 5xx answer (429s from the throttle counted); the table and all 20 jobs match the oracle in S3's order",
    figures={"files": 20, "rows uploaded": 2000, "rows checked": 1391, "API requests": 150, "5xx answers": 0},
    test="test_twenty_files_at_once_while_the_api_is_read_under_load",
)
PROOFS = [OVERLAP, CHAIN, TWENTY]
# Readers pause between requests so that their load spans the ingestion rather than its first
# seconds (on an idle machine, 3 readers come close to the dev stage's 20 requests/s).
READ_PAUSE_SECONDS = 0.1
# Slow enough that the file's 25 SendMessageBatch calls (4 in flight) outlast one invocation's
# 5 s of work, short enough that the 2 sends a segment may still wait for at its end (a free slot,
# then the last batch) fit its 5 s reserve.
SEND_DELAY_SECONDS = 1.5


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    with local_stack(tmp_path_factory.mktemp("reliability-scenarios"), *SETTINGS) as running:
        yield running


def upload_all(local: LocalStackProcess, uploads: Sequence[Upload]) -> list[str]:
    """Put each file in turn (S3 receives them in this order); returns their job ids."""
    bucket = local.outputs["bucketName"]
    return [job_id_for(bucket, upload.key, local.upload(upload.key, upload.body)) for upload in uploads]


def shared_emails(domain: str, count: int) -> list[str]:
    return [f"shared{n}@{domain}" for n in range(count)]


def test_overlapping_files_in_quick_succession_end_as_the_later_upload_in_both_orders(
    local: LocalStackProcess,
) -> None:
    checked = uploaded = 0
    runs = []
    for order in ("ab", "ba"):
        domain = f"overlap-{order}.example"
        shared = shared_emails(domain, 60)
        files = {
            name: Upload(
                f"uploads/overlap-{order}/{name}.csv", generate(domain, 400, seed=seed, invalid_every=13, shared=shared)
            )
            for name, seed in (("a", 1), ("b", 2))
        }
        uploads = [files[name] for name in order]
        runs.append((domain, uploads, upload_all(local, uploads)))
    for domain, uploads, job_ids in runs:
        settle(local, job_ids, timeout=120)
        verdict = verify(local, expect(uploads), job_ids, domain)
        assert verdict.holds, str(verdict)
        checked += verdict.rows_checked
        uploaded += sum(job.rows_total for job in expect(uploads).jobs)

    assert (len(runs) * 2, uploaded, checked) == (
        OVERLAP.figures["files"],
        OVERLAP.figures["rows uploaded"],
        OVERLAP.figures["rows checked"],
    )


def test_a_file_too_slow_for_one_invocation_continues_and_ends_as_one_long_pass_would(
    local: LocalStackProcess,
) -> None:
    domain = "chain.example"
    upload = Upload(
        "uploads/chain/long.csv", generate(domain, CHAIN.figures["rows uploaded"], seed=3, invalid_every=17)
    )
    local.fault(service="sqs", action="SendMessage", delay_seconds=SEND_DELAY_SECONDS, principal="producer")
    try:
        job_ids = upload_all(local, [upload])
        settle(local, job_ids, timeout=150)
    finally:
        local.clear_faults()

    verdict = verify(local, expect([upload]), job_ids, domain)
    assert verdict.holds, str(verdict)
    assert verdict.rows_checked == CHAIN.figures["rows checked"]
    record = stored_job(local, job_ids[0])
    assert record is not None
    invocations = record["checkpoint"]["segment"]
    continued = [
        line
        for line in local.log("producer").splitlines()
        if job_ids[0] in line and "continuing in a new invocation" in line
    ]
    # A continuation that dies is retried by Lambda and redoes its segment: more invocations than
    # continuations logged is fine, none logged is not.
    assert invocations >= 2 and continued, f"{invocations} invocation(s), {len(continued)} continuation(s) logged"


def test_twenty_files_at_once_while_the_api_is_read_under_load(local: LocalStackProcess) -> None:
    domain = "twenty.example"
    shared = shared_emails(domain, 40)
    uploads = [
        Upload(f"uploads/twenty/file-{n:02d}.csv", generate(domain, 100, seed=100 + n, invalid_every=11, shared=shared))
        for n in range(TWENTY.figures["files"])
    ]
    bucket = local.outputs["bucketName"]
    with ThreadPoolExecutor(len(uploads)) as pool:
        versions = list(pool.map(lambda u: local.upload(u.key, u.body), uploads))
    job_ids = [job_id_for(bucket, u.key, v) for u, v in zip(uploads, versions, strict=True)]

    statuses = _read_under_load(local, readers=3, requests_each=50, emails=shared, job_ids=job_ids)
    records = settle(local, job_ids, timeout=180)

    # The uploads went in at once: their order is S3's, as its events stated it (event time, then
    # sequencer) and the jobs recorded it.
    order = sorted(
        range(len(uploads)), key=lambda n: (records[n]["uploadedAtMs"], records[n]["sequencer"].ljust(32, "0"))
    )
    verdict = verify(local, expect([uploads[n] for n in order]), [job_ids[n] for n in order], domain)
    assert verdict.holds, str(verdict)
    server_errors = sum(count for status, count in statuses.items() if status >= 500)
    # 404: a user or job not there yet; 429: the stage's throttle. Anything else is a failure.
    assert statuses[200] > 0 and set(statuses) - {500, 502, 503, 504} <= {200, 404, 429}, statuses
    assert (
        len(uploads),
        sum(job.rows_total for job in expect(uploads).jobs),
        verdict.rows_checked,
        sum(statuses.values()),
        server_errors,
    ) == tuple(TWENTY.figures.values()), statuses


def _read_under_load(
    local: LocalStackProcess, *, readers: int, requests_each: int, emails: Sequence[str], job_ids: Sequence[str]
) -> Counter[int]:
    """`readers` threads each making `requests_each` API requests in a loop over the three read routes."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def read(reader: int) -> None:
        for n in range(requests_each):
            path = (
                f"/users?limit={1 + n % 100}",
                f"/users/{quote(emails[(reader + n) % len(emails)])}",
                f"/jobs/{job_ids[(reader + n) % len(job_ids)]}",
            )[n % 3]
            status = local.api(path).status
            with lock:
                statuses[status] += 1
            time.sleep(READ_PAUSE_SECONDS)

    with ThreadPoolExecutor(readers) as pool:
        list(pool.map(read, range(readers)))
    return statuses
