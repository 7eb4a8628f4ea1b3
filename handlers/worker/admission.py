"""What the worker checks before it writes a chunk: the queue is untrusted input.

Only the producer's role may send to the queue (its policy), but the worker does not rely on
that alone: a message can reach the queue another way (a principal allowed to send to the DLQ,
then a redrive), and a principal allowed to invoke the worker can hand it an SQS-shaped event of
its own. First, the chunk must be the producer's: its message carries the MAC of its exact body
under its job's key, HMAC-SHA256(the stack's signing secret, jobId) (`check_mac`,
`handlers/common/signing.py`). Only the producer's and the worker's roles and the deployers may read
that secret, and no table holds the key, so reading the jobs table, its index or a backup of them
gives nothing to sign with. Every field a chunk carries besides its rows is public or derivable, so
without the MAC a copy of a real job's fields with rows of anyone's choice would pass every other
check.

Then its job: a chunk of a finished job (`COMPLETE` or `COMPLETE_WITH_REJECTS`) is acknowledged
and nothing of it is written (`sealed`). That is safe because a job finishes only when every chunk
the producer sent has been counted (`jobs.try_finish`: `status = QUEUED AND chunksDone =
chunksTotal`, one marker per chunk number), and the worker counts a chunk only after every row of
it was written (`progress.ProgressCounter.count` runs after `UserWriter.write` returned): a
finished job's chunks have all been written, so a redelivery has nothing left to do. And it closes
the table to a finished job's chunks even for whoever learned its key.

Otherwise the chunk must match its job record — the job exists, and the chunk carries the job's
upload time, source object, tiebreak and expiry, a chunk number within the job's count once that
is known, and row numbers within its rows —, its upload time must not be later than now plus the
clock skew AWS tolerates (`check_upload_time`), and every row must pass the same field rules the
producer applied. A chunk that fails is refused whole, before any row is written: its message
fails, and after `maxReceiveCount` deliveries it rests in the DLQ, never in the table. Reasons name
fields and numbers, never a value.

A chunk of a `FAILED` job is still written: a job can fail (a segment that made no progress) after
some of its chunks were sent, and those rows are the upload's as much as any other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from handlers.common.chunks import ROW_SPACE, Chunk, upload_tiebreak, verify_mac
from handlers.common.dynamo import plain
from handlers.common.jobs import COMPLETE, COMPLETE_WITH_REJECTS, job_key
from handlers.common.retry import RetryCounter, call_with_backoff
from handlers.common.validation import InvalidValue, normalize_email, normalize_name, normalize_phone

# How far ahead of the worker's clock an upload time may be. A real one is at most the object's
# LastModified + 999 ms (handlers/producer/events.py), a time S3's clock set, and AWS holds its
# own services' clocks and its callers' to 15 minutes: a request dated more than 15 minutes in the
# future is refused (RequestExpired,
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html). A chunk
# dated later was not made from an upload; a stored row dated later was planted (writes.py).
MAX_CLOCK_SKEW_MS = 15 * 60 * 1000
_SKEW_TEXT = "15 minutes"

# A finished job: every chunk the producer sent was written, then counted (see the module's docstring).
SEALED = frozenset({COMPLETE, COMPLETE_WITH_REJECTS})

# What the check needs of a job record; the rest (checkpoint, header) is not read. Every name goes
# through a placeholder: several (`status`, `key`, `bucket`) are DynamoDB reserved words.
_ATTRIBUTES = (
    "jobId",
    "status",
    "bucket",
    "key",
    "versionId",
    "uploadedAtMs",
    "sequencer",
    "expiresAt",
    "chunksTotal",
    "rowsTotal",
)
_PROJECTION = ", ".join(f"#a{i}" for i in range(len(_ATTRIBUTES)))
_NAMES = {f"#a{i}": name for i, name in enumerate(_ATTRIBUTES)}


class ChunkRefused(ValueError):
    """A chunk that does not match its job, or holds a row that breaks a field rule."""


def check_mac(chunk: Chunk, body: str, mac: str | None, key: bytes) -> None:
    """The chunk is the producer's: `mac`, the one its message carries, is its body's MAC under
    `key`, its job's key (`signing.JobKeys.for_job(chunk.jobId)`)."""
    if mac is None:
        raise ChunkRefused(f"chunk {chunk.chunk} of job {chunk.jobId} carries no MAC")
    if not verify_mac(body, mac, key):
        raise ChunkRefused(f"chunk {chunk.chunk}: its MAC does not match job {chunk.jobId}'s key")


def sealed(job: dict[str, Any] | None) -> bool:
    """Whether `job` (its record, or None) is finished: its chunks are acknowledged, never written."""
    return job is not None and job.get("status") in SEALED


def check_upload_time(chunk: Chunk, now_ms: int) -> None:
    """The chunk's upload time is not later than `now_ms` plus the clock skew AWS tolerates."""
    if chunk.uploadedAtMs > now_ms + MAX_CLOCK_SKEW_MS:
        raise ChunkRefused(
            f"chunk {chunk.chunk} of job {chunk.jobId}: uploadedAtMs is more than {_SKEW_TEXT} ahead of the clock"
        )


def check_rows(chunk: Chunk) -> None:
    """Every row as the producer would have made it: valid, normalised, numbered in range."""
    for index, row in enumerate(chunk.rows, start=1):
        if not 0 < row.row < ROW_SPACE:
            raise ChunkRefused(f"chunk {chunk.chunk}: row {index} has a row number outside 1..{ROW_SPACE - 1}")
        try:
            normalised = (
                normalize_email(row.email),
                normalize_name(row.name),
                None if row.phone is None else normalize_phone(row.phone),
            )
        except InvalidValue as invalid:
            raise ChunkRefused(f"chunk {chunk.chunk}: row {row.row}: {invalid}") from None
        if normalised != (row.email, row.name, row.phone):
            raise ChunkRefused(f"chunk {chunk.chunk}: row {row.row} is not in normalised form")


def check_against_job(chunk: Chunk, job: dict[str, Any] | None) -> None:
    """The chunk belongs to `job` (the job record, or None if there is none)."""
    if job is None:
        raise ChunkRefused(f"chunk {chunk.chunk} names job {chunk.jobId}, which has no record")
    expected = {
        "uploadedAtMs": job["uploadedAtMs"],
        "source": (job["bucket"], job["key"], job["versionId"]),
        "tiebreak": upload_tiebreak(job.get("sequencer", ""), job["jobId"]),
        "expiresAt": job.get("expiresAt"),
    }
    carried = {
        "uploadedAtMs": chunk.uploadedAtMs,
        "source": (chunk.source.bucket, chunk.source.key, chunk.source.versionId),
        "tiebreak": chunk.tiebreak,
        "expiresAt": chunk.expiresAt,
    }
    differing = [name for name in expected if expected[name] != carried[name]]
    if differing:
        raise ChunkRefused(f"chunk {chunk.chunk} does not match job {chunk.jobId}: {', '.join(differing)} differ")
    if chunk.chunk < 0:
        raise ChunkRefused(f"chunk number {chunk.chunk} is negative")
    if "chunksTotal" in job:  # set when the producer has queued every chunk
        if chunk.chunk >= job["chunksTotal"]:
            raise ChunkRefused(f"chunk {chunk.chunk} is beyond job {chunk.jobId}'s {job['chunksTotal']} chunks")
        if any(row.row > job["rowsTotal"] for row in chunk.rows):
            raise ChunkRefused(f"chunk {chunk.chunk} has a row number beyond job {chunk.jobId}'s rows")


class JobLookup:
    """Reads the job records chunks are checked against (strongly consistent: a chunk can arrive
    within milliseconds of its job's creation)."""

    def __init__(self, client: Any, table: str) -> None:
        self._client, self._table = client, table

    def get(self, job_id: str, seconds_left: Callable[[], float], retries: RetryCounter) -> dict[str, Any] | None:
        response = call_with_backoff(
            lambda: self._client.get_item(
                TableName=self._table,
                Key=job_key(job_id),
                ConsistentRead=True,
                ProjectionExpression=_PROJECTION,
                ExpressionAttributeNames=_NAMES,
            ),
            seconds_left,
            on_retry=retries,
        )
        item = response.get("Item")
        return None if item is None else plain(item)
