"""Count a chunk's progress on its job exactly once, and finish the job when it is the last."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from handlers.common.chunks import Chunk
from handlers.common.jobs import chunk_key, job_key, try_finish
from handlers.common.retry import RetryCounter, call_with_backoff, is_retryable
from handlers.common.timestamps import utc_now
from handlers.worker.writes import WriteOutcome


class JobMissing(RuntimeError):
    """A chunk names a job that has no record: the message fails (and reaches the DLQ)."""


def _cancellation_codes(error: ClientError) -> list[str]:
    return [reason.get("Code", "None") for reason in error.response.get("CancellationReasons", [])]


def _retryable(error: BaseException) -> bool:
    if isinstance(error, ClientError) and error.response["Error"]["Code"] == "TransactionCanceledException":
        return any(
            code in ("TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded")
            for code in _cancellation_codes(error)
        )
    return is_retryable(error)


class ProgressCounter:
    """Chunk marker and job counters in one transaction: a redelivered chunk is not counted twice."""

    def __init__(self, client: Any, table: str) -> None:
        self._client, self._table = client, table

    def count(
        self, chunk: Chunk, outcome: WriteOutcome, seconds_left: Callable[[], float], retries: RetryCounter
    ) -> bool:
        """Count the chunk; False if it was already counted. Then try to finish the job."""
        items = _transaction(self._table, chunk, outcome)
        try:
            call_with_backoff(
                lambda: self._client.transact_write_items(TransactItems=items),
                seconds_left,
                on_retry=retries,
                retryable=_retryable,
            )
        except ClientError as error:
            codes = _cancellation_codes(error)
            if codes[1:2] == ["ConditionalCheckFailed"]:
                raise JobMissing(f"job {chunk.jobId} has no record; chunk {chunk.chunk} cannot be counted") from error
            if codes[:1] != ["ConditionalCheckFailed"]:
                raise
            counted = False  # by an earlier delivery, which may have failed before finishing the job
        else:
            counted = True
        try_finish(self._client, self._table, chunk.jobId, seconds_left)
        return counted


def _transaction(table: str, chunk: Chunk, outcome: WriteOutcome) -> list[dict[str, Any]]:
    """Put the chunk's marker (only if absent) and add its counts to the job (only if it exists)."""
    marker: dict[str, Any] = {
        **chunk_key(chunk.jobId, chunk.chunk),
        "countedAt": utc_now(),
        "rowsWritten": outcome.written,
        "rowsSuperseded": outcome.superseded,
    }
    if chunk.expiresAt is not None:
        marker["expiresAt"] = chunk.expiresAt
    counters = {":one": 1, ":written": outcome.written, ":superseded": outcome.superseded}
    return [
        {"Put": {"TableName": table, "Item": marker, "ConditionExpression": "attribute_not_exists(jobId)"}},
        {
            "Update": {
                "TableName": table,
                "Key": job_key(chunk.jobId),
                "UpdateExpression": "ADD chunksDone :one, rowsWritten :written, rowsSuperseded :superseded",
                "ConditionExpression": "attribute_exists(jobId)",
                "ExpressionAttributeValues": counters,
            }
        },
    ]
