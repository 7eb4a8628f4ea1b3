"""Hostile files through local mode: each ends as a clear FAILED (the rule, no cell) or as rejected
rows, within a bounded time, and no producer invocation comes near its memory or time limit.

One dev stack for the module, with `maxUploadBytes` lowered to 128 MiB so that both sides of the
limit are cheap to reach: the gigabyte of commas is refused unread, and 128 MiB less one byte of
commas goes through the reader (the streaming path). Files are generated as streams of blocks
(`tests/input/hostile.py`) and uploaded in parts; none is built whole in memory here.

The producer's memory is read where Lambda reports it: the `Max Memory Used` of its REPORT lines
(local mode measures each process's peak resident memory). Warm processes carry their peak over to
later invocations, so each test's check covers everything the producer did before it as well.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig

from tests.evidence import Proof
from tests.input.hostile import (
    MIB,
    NESTED_NAME_QUOTES,
    Hostile,
    commas,
    gzip_bomb,
    huge_field,
    nested_quotes,
    unclosed_quote,
    wide_header,
)
from tests.input.stack import reasons, report_rows, users_by_domain
from tests.local.support import LocalStackProcess, job_id_for, local_stack

MAX_UPLOAD_BYTES = 128 * MIB
GIB = 1024 * MIB
# Bounded time: each job ends within this (the producer's own timeout is 300 s).
JOB_TIMEOUT_SECONDS = 240
NOT_READ = "records over 1048576 bytes are not read"
TRANSFER = TransferConfig(multipart_threshold=64 * MIB, multipart_chunksize=64 * MIB, max_concurrency=2)
_REPORT = re.compile(r"REPORT RequestId: \S+.*?Memory Size: (\d+) MB\tMax Memory Used: (\d+) MB(.*)")


def _proof(name: str, injected: str, held: str, test: str, **figures: int) -> Proof:
    return Proof("SECURITY", "Hostile files", name, injected=injected, held=held, figures=figures, test=test)


WIDE = _proof(
    "A 10,000-column header",
    "a header of 10,000 columns (name, mail and 9,998 others) and one row",
    "FAILED 'header too wide: 10000 columns' before any row; no header cell in the error; producer memory bounded",
    "test_a_ten_thousand_column_header_fails_the_file",
    columns=10_000,
)
HUGE = _proof(
    "A 100 MB single field",
    "a valid row, a row whose ignored cell is 100 MiB of one character, a valid row",
    "the 100 MiB record rejected unread with its length; both valid rows written; producer memory bounded",
    "test_a_100_mb_field_is_one_rejected_row",
    **{"bytes in the field": 100 * MIB, "valid rows written": 2, "record(s) rejected unread": 1},
)
COMMAS = _proof(
    "1 GB of commas, no newline",
    "1 GiB of commas (16 copies of a 64 MiB part, UploadPartCopy) on a stack ingesting at most 128 MiB"
    " (maxUploadBytes)",
    "FAILED 'file too large' naming both sizes, before the object is read; producer memory bounded",
    "test_a_gigabyte_of_commas_is_refused_unread",
    **{"bytes uploaded": GIB},
)
COMMAS_READ = _proof(
    "128 MiB of commas, just under the limit",
    "128 MiB less one byte of commas: one record of 134,217,728 empty fields, no newline",
    "read to its end as one oversized record and FAILED 'header row is 134217727 bytes long'; producer memory bounded",
    "test_commas_just_under_the_limit_are_read_and_fail_as_no_header",
    **{"bytes read": MAX_UPLOAD_BYTES - 1},
)
NESTED = _proof(
    "Deeply nested quotes",
    "a name of 100,000 escaped quotes; a 2.8 MB cell of escaped quotes, commas and newlines; "
    "a name quoted around inner quotes; and separately a quote never closed over 20 MiB",
    "the first two rows rejected (name length; record unread), the third written; the unclosed quote "
    "FAILED 'unexpected end of data' naming its line; producer memory bounded",
    "test_deeply_nested_quotes_end_as_rejected_rows_or_a_clear_failure",
    **{"rows rejected": 2, "row(s) written": 1, "bytes in the unclosed quote": 20 * MIB},
)
BOMB = _proof(
    "A gzip bomb named .csv",
    "a 3 MB gzip file (sent with Content-Encoding: gzip) expanding to 1 GiB of valid CSV rows, named .csv",
    "FAILED 'gzip data, not text' on the compressed bytes: never decompressed, no row written; producer memory bounded",
    "test_a_gzip_bomb_is_never_decompressed",
    **{"bytes it expands to": GIB},
)
PROOFS = [WIDE, HUGE, COMMAS, COMMAS_READ, NESTED, BOMB]


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    settings = ("--set", f"maxUploadBytes={MAX_UPLOAD_BYTES}", "--set", "workerBatchingWindowSeconds=0")
    with local_stack(tmp_path_factory.mktemp("hostile"), *settings, "--retry-delays", "1,2") as running:
        yield running


def hostile_key(local: LocalStackProcess, stem: str) -> str:
    """A key that starts a job: under the stack's uploads prefix, with its suffix."""
    return f"{local.outputs['uploadsPrefix']}hostile/{stem}{local.outputs['uploadsSuffixes'][0]}"


def ingest(local: LocalStackProcess, file: Hostile, **extra: str) -> dict[str, Any]:
    """Stream `file` into the bucket under the uploads prefix and wait for its job to end."""
    key, s3, bucket = hostile_key(local, file.stem), local.client("s3"), local.outputs["bucketName"]
    s3.upload_fileobj(file.stream(), bucket, key, ExtraArgs=extra or None, Config=TRANSFER)
    return finished(local, key, file.size)


def ingest_copies(local: LocalStackProcess, part: Hostile, copies: int) -> dict[str, Any]:
    """Upload `part` once outside the uploads prefix (no job), then make the object to ingest from
    `copies` copies of it in one multipart upload (UploadPartCopy): a gigabyte without sending one."""
    s3, bucket = local.client("s3"), local.outputs["bucketName"]
    source = f"hostile-parts/{part.name}"
    assert not source.startswith(local.outputs["uploadsPrefix"])
    s3.upload_fileobj(part.stream(), bucket, source, Config=TRANSFER)
    key = hostile_key(local, f"{part.stem}_x{copies}")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = [
        {
            "PartNumber": n,
            "ETag": s3.upload_part_copy(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=n, CopySource={"Bucket": bucket, "Key": source}
            )["CopyPartResult"]["ETag"],
        }
        for n in range(1, copies + 1)
    ]
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    return finished(local, key, part.size * copies)


def finished(local: LocalStackProcess, key: str, size: int) -> dict[str, Any]:
    """The job of the object's current version, once it has ended; its size checked first."""
    s3, bucket = local.client("s3"), local.outputs["bucketName"]
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == size
    job = local.finished_job(job_id_for(bucket, key, head["VersionId"]), JOB_TIMEOUT_SECONDS)
    assert job["objectSize"] == size
    return job


def producer_reports(local: LocalStackProcess) -> list[tuple[int, int, str]]:
    """(memory size, max memory used, status) of every producer invocation so far; the status is
    empty unless the invocation timed out or its process died (`Status: timeout`, `Status: error`)."""
    return [(int(m[1]), int(m[2]), _status(m[3])) for m in _REPORT.finditer(local.log("producer"))]


def _status(rest: str) -> str:
    found = re.search(r"Status: \S+", rest)
    return found[0] if found else ""


def assert_producer_bounded(local: LocalStackProcess) -> None:
    """No producer invocation reached its memory size, timed out or was killed."""
    reports = producer_reports(local)
    assert reports, "no REPORT line from the producer"
    over = [r for r in reports if r[1] >= r[0] or r[2]]
    assert not over, f"producer invocations over memory, timed out or killed: {over}"


def users_of(local: LocalStackProcess, domain: str) -> dict[str, str]:
    return {email: user["name"] for email, user in users_by_domain(local).get(domain, {}).items()}


def test_a_ten_thousand_column_header_fails_the_file(local: LocalStackProcess) -> None:
    columns = WIDE.figures["columns"]
    job = ingest(local, wide_header(columns))

    assert job["status"] == "FAILED"
    assert job["error"].startswith(f"header too wide: {columns} columns")
    assert not re.search(r"h\d{5}x", job["error"]), job["error"]  # names no header cell
    assert users_of(local, "wide-hostile.example.com") == {}
    assert_producer_bounded(local)


def test_a_100_mb_field_is_one_rejected_row(local: LocalStackProcess) -> None:
    file, record = huge_field(HUGE.figures["bytes in the field"])
    job = ingest(local, file)

    assert job["status"] == "COMPLETE_WITH_REJECTS"
    assert (job["rowsTotal"], job["rowsValid"], job["rowsRejected"]) == (3, 2, 1)
    assert reasons(report_rows(local, job)) == [(2, 3, f"record is {record} bytes long; {NOT_READ}")]
    assert len(users_of(local, "huge-field.example.com")) == HUGE.figures["valid rows written"]
    assert job["rowsRejected"] == HUGE.figures["record(s) rejected unread"]
    assert_producer_bounded(local)


def test_a_gigabyte_of_commas_is_refused_unread(local: LocalStackProcess) -> None:
    job = ingest_copies(local, commas(64 * MIB), COMMAS.figures["bytes uploaded"] // (64 * MIB))

    assert job["status"] == "FAILED"
    assert job["error"] == (
        f"file too large: {GIB} bytes; this stack ingests files of at most {MAX_UPLOAD_BYTES} bytes (maxUploadBytes)"
    )
    assert_producer_bounded(local)


def test_commas_just_under_the_limit_are_read_and_fail_as_no_header(local: LocalStackProcess) -> None:
    size = COMMAS_READ.figures["bytes read"]
    job = ingest(local, commas(size))

    assert job["status"] == "FAILED"
    assert job["error"] == f"header row is {size} bytes long; not a header"
    assert_producer_bounded(local)


def test_deeply_nested_quotes_end_as_rejected_rows_or_a_clear_failure(local: LocalStackProcess) -> None:
    file, record = nested_quotes()
    job = ingest(local, file)

    assert job["status"] == "COMPLETE_WITH_REJECTS"
    assert (job["rowsTotal"], job["rowsValid"], job["rowsRejected"]) == (3, 1, 2)
    assert reasons(report_rows(local, job)) == [
        (1, 2, f"name is {NESTED_NAME_QUOTES} characters long; at most 256 allowed"),
        (2, 3, f"record is {record} bytes long; {NOT_READ}"),
    ]
    assert users_of(local, "nested.example.com") == {"ada@nested.example.com": 'Ada "Quoted" Nested'}
    assert job["rowsRejected"] == NESTED.figures["rows rejected"]
    assert job["rowsValid"] == NESTED.figures["row(s) written"]

    unclosed = ingest(local, unclosed_quote(NESTED.figures["bytes in the unclosed quote"]))
    assert unclosed["status"] == "FAILED"
    assert unclosed["error"] == "not CSV: unexpected end of data (record starting on line 2)"
    assert_producer_bounded(local)


def test_a_gzip_bomb_is_never_decompressed(local: LocalStackProcess) -> None:
    bomb = gzip_bomb(BOMB.figures["bytes it expands to"])
    job = ingest(local, bomb, ContentEncoding="gzip", ContentType="text/csv")

    assert bomb.size < 4 * MIB
    assert job["status"] == "FAILED"
    assert job["error"].startswith("gzip data, not text: the file is gzip-compressed")
    assert users_of(local, "gzip-bomb.example.com") == {}
    assert_producer_bounded(local)
