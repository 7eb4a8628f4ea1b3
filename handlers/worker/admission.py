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
it was written (`progress.ProgressCounter.count` runs after `ItemWriter.write` returned): a
finished job's chunks have all been written, so a redelivery has nothing left to do. And it closes
the table to a finished job's chunks even for whoever learned its key.

Otherwise the chunk must match its job record — the job exists, and the chunk carries the job's
upload time, source object, tiebreak and expiry, a chunk number within the job's count once that
is known, and row numbers within its rows —, its upload time must not be later than now plus the
clock skew AWS tolerates (`check_upload_time`), it must have been made with this worker's schema
(its fingerprint), and every row must hold one value per column, each the normal form the producer
makes of a cell of its column's type (`check_rows`). A chunk that fails is refused whole, before any
row is written: its message fails, and after `maxReceiveCount` deliveries it rests in the DLQ, never
in the table. Reasons name columns, rules and numbers, never a value.

A chunk of a `FAILED` job is still written: a job can fail (a segment that made no progress) after
some of its chunks were sent, and those rows are the upload's as much as any other.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from operator import is_not, itemgetter
from typing import Any

from handlers.common.chunks import ROW_SPACE, Chunk, Row, upload_tiebreak, verify_mac
from handlers.common.dynamo import plain
from handlers.common.jobs import COMPLETE, COMPLETE_WITH_REJECTS, job_key
from handlers.common.retry import RetryCounter, call_with_backoff
from handlers.common.schema import Column, Schema, render
from handlers.common.validation import InvalidValue

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


def check_rows(chunk: Chunk, schema: Schema) -> None:
    """The chunk was made with `schema` (its fingerprint), and every row is as the producer would have
    made it with it: numbered in range, one value per column, each value the normal form of its
    column's type (`Column.is_normal`). A row's reason is its first broken rule, its cells checked in
    the order the producer checks them (`Schema.checked_order`).

    A chunk is checked column by column first (`_normal_by_column`), as the producer normalises a block
    of rows: a few calls in C per column instead of a few in Python per value. Only a chunk that fails
    that is checked row by row, for the first broken rule."""
    if chunk.schema != schema.fingerprint:
        carried = chunk.schema if _FINGERPRINT.fullmatch(chunk.schema) else "that is not a fingerprint"
        raise ChunkRefused(
            f"chunk {chunk.chunk} was made with schema {carried}; this worker's schema is {schema.fingerprint}"
        )
    if not _normal_by_column(chunk.rows, schema):
        _refuse_first_broken_row(chunk, schema)


def _normal_by_column(rows: tuple[Row, ...], schema: Schema) -> bool:
    """Whether every row is numbered in range, has one value per column, and each value is
    `Column.is_normal`, over a column at once: None only where the column is optional, every other
    value of exactly the column's JSON type and what `Column.normalize_many` makes of it. False says
    only that some row may break a rule: `_refuse_first_broken_row` says which, and why."""
    if not rows:
        return True
    numbers = [row.row for row in rows]
    if min(numbers) < 1 or max(numbers) >= ROW_SPACE:
        return False
    table = [row.values for row in rows]
    if set(map(len, table)) != {len(schema.columns)}:
        return False
    for position, column in enumerate(schema.columns):
        cells = list(map(itemgetter(position), table))
        values = list(filter(_is_value, cells))
        if column.required and len(values) != len(cells):
            return False
        if not values:
            continue
        if set(map(type, values)) != {column.type.json_type}:
            return False
        raws = values if column.type.json_type is str else list(map(render, values))
        if column.normalize_many(raws) != values:
            return False
    return True


_is_value = partial(is_not, None)


def _refuse_first_broken_row(chunk: Chunk, schema: Schema) -> None:
    """Refuse the chunk for its first row that breaks a rule, naming the rule; return if none does."""
    width = len(schema.columns)
    checked = [(index, schema.columns[index]) for index in schema.checked_order]
    for index, row in enumerate(chunk.rows, start=1):
        if not 0 < row.row < ROW_SPACE:
            raise ChunkRefused(f"chunk {chunk.chunk}: row {index} has a row number outside 1..{ROW_SPACE - 1}")
        if len(row.values) != width:
            raise ChunkRefused(
                f"chunk {chunk.chunk}: row {row.row} has {len(row.values)} values; the schema has {width} columns"
            )
        values = row.values
        for position, column in checked:
            if not column.is_normal(values[position]):
                raise ChunkRefused(f"chunk {chunk.chunk}: row {row.row}: {_why_not_normal(column, values[position])}")


# A schema's fingerprint (`Schema.fingerprint`): a refusal names a carried one only in this form.
_FINGERPRINT = re.compile(r"[0-9a-f]{16}")


def _why_not_normal(column: Column, value: Any) -> str:
    """Why `value` is not a normal form of `column`, naming the column and the rule, never the value:
    the rule's reason when the value breaks it (an empty required cell too), else that it is not in the
    form the producer makes of it (padded, in another case, or carried as another JSON type)."""
    if value is None or type(value) is column.type.json_type:
        try:
            column.normalize(render(value))
        except InvalidValue as invalid:
            return str(invalid)
    return f"{column.name} is not in normalised form"


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
