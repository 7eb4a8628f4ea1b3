"""Write a chunk's rows to the users table: latest version wins, whatever the delivery order."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from handlers.common.chunks import Chunk, Row, versions_after
from handlers.common.jobs import utc_now
from handlers.common.retry import RetryCounter, call_with_backoff
from handlers.worker.admission import MAX_CLOCK_SKEW_MS

# A row replaces the stored item only if the item is absent or not newer. Re-applying the same
# version rewrites identical data: harmless, so redelivered chunks are safe. A stored version dated
# later than now plus the clock skew AWS tolerates was planted (a forged upload time, before chunks
# were checked for one: admission.check_upload_time), not uploaded; it would otherwise win for ever,
# so any real row replaces it. Versions are fixed-width strings, compared byte-wise (chunks.row_version).
LATEST_WINS = "attribute_not_exists(email) OR rowVersion <= :version OR rowVersion > :farFuture"


def latest_wins_values(version: str, now_ms: int) -> dict[str, dict[str, str]]:
    """`LATEST_WINS`'s values, in wire format, for a row of `version` written at `now_ms`."""
    return {":version": {"S": version}, ":farFuture": {"S": versions_after(now_ms + MAX_CLOCK_SKEW_MS)}}


# Concurrent writes per invocation: enough to keep DynamoDB busy, within one connection pool.
WRITERS = 16


class RowsUnwritten(RuntimeError):
    """Some rows of a chunk are not written; the message fails and is delivered again."""


@dataclass(frozen=True)
class WriteOutcome:
    written: int
    superseded: int


def latest_rows(chunk: Chunk) -> tuple[list[Row], int]:
    """One row per email, the highest version; and how many rows lost to a later one in the chunk.

    Also keeps any single request from naming one key twice.
    """
    latest: dict[str, Row] = {}
    for row in chunk.rows:
        if row.email not in latest or row.row > latest[row.email].row:
            latest[row.email] = row
    return list(latest.values()), len(chunk.rows) - len(latest)


WireItem = dict[str, dict[str, str]]
"""An item in DynamoDB's wire format (`{"name": {"S": "…"}}`), as the low-level client sends it."""


def user_item(chunk: Chunk, row: Row) -> WireItem:
    """The users table's item for `row`, in wire format: every attribute a string but `row`, a number.

    Built here rather than by boto3's resource layer, whose serializer walks every parameter of every
    call (bench `worker`: a tenth of a put's CPU, and the worker's CPU is most of its cost on AWS)."""
    item: WireItem = {
        "email": {"S": row.email},
        "name": {"S": row.name},
        "rowVersion": {"S": chunk.version_of(row)},
        "uploadedAt": {"S": datetime.fromtimestamp(chunk.uploadedAtMs / 1000, UTC).isoformat(timespec="milliseconds")},
        "updatedAt": {"S": utc_now()},
        "jobId": {"S": chunk.jobId},
        "sourceBucket": {"S": chunk.source.bucket},
        "sourceKey": {"S": chunk.source.key},
        "sourceVersionId": {"S": chunk.source.versionId},
        "row": {"N": str(row.row)},
    }
    if row.phone is not None:
        item["phone"] = {"S": row.phone}
    return item


class UserWriter:
    """Conditional puts on a bounded pool, each retried with backoff while time remains.

    `client` is a low-level DynamoDB client (items go out in wire format, `user_item`)."""

    def __init__(self, client: Any, table: str, executor: ThreadPoolExecutor) -> None:
        self._client, self._table, self._executor = client, table, executor

    def write(self, chunk: Chunk, seconds_left: Callable[[], float], retries: RetryCounter) -> WriteOutcome:
        rows, superseded = latest_rows(chunk)
        now_ms = int(time.time() * 1000)
        futures = [self._executor.submit(self._put, chunk, row, now_ms, seconds_left, retries) for row in rows]
        errors, written = [], 0
        for future in futures:
            try:
                written += future.result()
            except Exception as error:  # collected: every other row still gets its chance
                errors.append(error)
        if errors:
            raise RowsUnwritten(f"{len(errors)} of {len(rows)} rows unwritten: {errors[0]!r}") from errors[0]
        return WriteOutcome(written=written, superseded=superseded + len(rows) - written)

    def _put(
        self, chunk: Chunk, row: Row, now_ms: int, seconds_left: Callable[[], float], retries: RetryCounter
    ) -> int:
        """1 if written, 0 if a newer version is already stored."""
        try:
            call_with_backoff(
                lambda: self._client.put_item(
                    TableName=self._table,
                    Item=user_item(chunk, row),
                    ConditionExpression=LATEST_WINS,
                    ExpressionAttributeValues=latest_wins_values(chunk.version_of(row), now_ms),
                ),
                seconds_left,
                on_retry=retries,
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return 0
        return 1
