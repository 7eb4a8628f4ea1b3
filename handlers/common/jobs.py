"""The jobs table: one record per uploaded object version, plus one marker per counted chunk.

Keys: `jobId` (hash) and `sk` (range): `sk = "JOB"` is the job record, `sk = "CHUNK#00000042"`
the marker that chunk 42 was counted. Job record attributes:

| attribute | set by | meaning |
| --- | --- | --- |
| `status` | producer, finisher | `PARSING` → `QUEUED` → `COMPLETE` / `COMPLETE_WITH_REJECTS`, or `FAILED` |
| `bucket`, `key`, `versionId`, `objectSize`, `sequencer` | producer | the upload |
| `uploadedAt`, `startedAt`, `queuedAt`, `finishedAt` | producer, finisher | ISO-8601 UTC times |
| `rowsTotal`, `rowsValid`, `rowsRejected`, `blankLines`, `chunksTotal` | producer | what the file held |
| `chunksDone`, `rowsWritten`, `rowsSuperseded` | worker | progress, counted once per chunk |
| `rejectsReport`, `rejectsParts` | producer | `s3://bucket/reports/<jobId>/` and how many part files it holds |
| `extraColumns` | producer | header columns that were ignored |
| `format` | producer | how the file was read: `gzip`, `encoding`, `delimiter`, `detected` (from its header) |
| `error` | producer | why the job `FAILED` |
| `recentPk`, `recentSk` | producer | the job's place in the `recent-jobs` index (internal) |

No attribute holds anything a chunk could be signed with: a job's key is derived from the stack's
signing secret when needed (`handlers/common/signing.py`), so reading this table gives no key.

The `recent-jobs` index lists jobs newest first (`GET /jobs`): see `recent_jobs_keys`.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from handlers.common.dynamo import from_wire
from handlers.common.retry import call_with_backoff
from handlers.common.timestamps import utc_now

JOB_SK = "JOB"
CHUNK_SK_PREFIX = "CHUNK#"

PARSING, QUEUED, FAILED = "PARSING", "QUEUED", "FAILED"
COMPLETE, COMPLETE_WITH_REJECTS = "COMPLETE", "COMPLETE_WITH_REJECTS"
# The global secondary index that lists jobs by upload time. Only job records carry its key
# attributes, so chunk markers never enter it (a sparse index:
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-indexes-general-sparse-indexes.html).
RECENT_JOBS_INDEX = "recent-jobs"
RECENT_JOBS_PK, RECENT_JOBS_SK = "recentPk", "recentSk"
# Every job in one index partition: a Query on it reads jobs in sort-key order across all of them.
RECENT_JOBS_PARTITION = JOB_SK
# `recentSk`: the upload time in ms, zero-padded to 15 digits so that string order is time order
# (until the year 33658), then the job id, so that two uploads of the same millisecond still have
# a total order and a page token names exactly one position.
RECENT_JOBS_POSITION = re.compile(r"(?P<ms>[0-9]{15})#(?P<jobId>[0-9a-f]{32})")

# Bookkeeping the producer keeps on the record for itself; not part of the public job view.
INTERNAL_ATTRIBUTES = frozenset(
    {
        "sk",
        "checkpoint",
        "leaseUntil",
        "leaseOwner",
        "finalStatus",
        "expiresAt",
        RECENT_JOBS_PK,
        RECENT_JOBS_SK,
    }
)


def job_id_for(bucket: str, key: str, version_id: str) -> str:
    """One job per object version, whatever event announces it, however often."""
    return hashlib.sha256(f"s3://{bucket}/{key}?versionId={version_id}".encode()).hexdigest()[:32]


def job_key(job_id: str) -> dict[str, str]:
    return {"jobId": job_id, "sk": JOB_SK}


def recent_jobs_keys(job_id: str, uploaded_at_ms: int) -> dict[str, str]:
    """The attributes that put a job record in the `recent-jobs` index, newest upload first when
    queried backwards."""
    return {RECENT_JOBS_PK: RECENT_JOBS_PARTITION, RECENT_JOBS_SK: f"{uploaded_at_ms:015d}#{job_id}"}


def recent_jobs_start_key(position: str) -> dict[str, str]:
    """The `ExclusiveStartKey` of a `recent-jobs` query resuming after `position` (a `recentSk`):
    the index's keys and the table's. `ValueError` for a string that is not a position."""
    match = RECENT_JOBS_POSITION.fullmatch(position)
    if match is None:
        raise ValueError("not a recent-jobs position")
    return {RECENT_JOBS_PK: RECENT_JOBS_PARTITION, RECENT_JOBS_SK: position, **job_key(match["jobId"])}


def chunk_key(job_id: str, chunk: int) -> dict[str, str]:
    return {"jobId": job_id, "sk": f"{CHUNK_SK_PREFIX}{chunk:08d}"}


def try_finish(client: Any, table: str, job_id: str, seconds_left: Callable[[], float]) -> bool:
    """Set the job's final status if the producer has queued it and every chunk is counted.

    Both the producer (after queueing, or on a retry that finds the job queued) and the worker
    (after counting a chunk, or on a redelivery of a counted one) call this; the condition on
    `status = QUEUED` makes exactly one call succeed, and a call lost to an error is made again by
    the retry. `client` takes native Python values (`handlers.common.aws.items_client`).

    A job that counted more chunks than its producer sent can never finish: a chunk that was not
    the producer's got counted while the job was still parsing (before its chunk count was known,
    the worker cannot tell a number beyond it). It fails, saying so, rather than stay `QUEUED`.
    """
    end = _QueuedJobEnd(client, table, job_id, seconds_left)
    try:
        end("#status = finalStatus", "chunksDone = chunksTotal", ReturnValuesOnConditionCheckFailure="ALL_OLD")
    except client.exceptions.ConditionalCheckFailedException as refused:
        job = from_wire(refused.response.get("Item")) or {}
        if job.get("status") == QUEUED and job.get("chunksDone", 0) > job.get("chunksTotal", 0):
            with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):  # another call did it
                end(
                    "#status = :failed, #error = :reason",
                    "chunksDone > chunksTotal",
                    values={":failed": FAILED, ":reason": OVERCOUNTED},
                    names={"#error": "error"},
                )
        return False
    return True


OVERCOUNTED = "more chunks were counted than the producer sent: a chunk not sent by it was written and counted"


@dataclass(frozen=True)
class _QueuedJobEnd:
    """Ends a `QUEUED` job: one conditional update that sets its status and `finishedAt`."""

    client: Any
    table: str
    job_id: str
    seconds_left: Callable[[], float]

    def __call__(
        self,
        assignments: str,
        condition: str,
        values: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
        **options: Any,
    ) -> None:
        call_with_backoff(
            lambda: self.client.update_item(
                TableName=self.table,
                Key=job_key(self.job_id),
                UpdateExpression=f"SET {assignments}, finishedAt = :now",
                ConditionExpression=f"#status = :queued AND {condition}",
                ExpressionAttributeNames={"#status": "status", **(names or {})},
                ExpressionAttributeValues={":queued": QUEUED, ":now": utc_now(), **(values or {})},
                **options,
            ),
            self.seconds_left,
        )


def public_view(item: dict[str, Any]) -> dict[str, Any]:
    """The job record as the API shows it."""
    return {k: v for k, v in item.items() if k not in INTERNAL_ATTRIBUTES}
