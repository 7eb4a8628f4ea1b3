"""The producer's side of the job record: create once, lease, checkpoint, queue or fail."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Any

from handlers.common.dynamo import from_wire, plain
from handlers.common.jobs import FAILED, PARSING, QUEUED, job_key, recent_jobs_keys
from handlers.common.timestamps import utc_now


@dataclass
class Checkpoint:
    """Where the next invocation resumes: always a record boundary with no chunk half-packed."""

    phase: str
    """`VALIDATE` (checking the whole file is UTF-8 CSV before sending anything) or `INGEST`."""
    offset: int
    """Byte offset of the next record."""
    line: int
    """Physical lines before `offset`."""
    row: int
    """Data rows before `offset` (blank lines are not rows)."""
    chunk: int
    """Number of the next chunk."""
    segment: int
    """Invocations that worked on the job so far."""
    data_offset: int = 0
    """Byte offset of the first record after the header."""
    data_line: int = 0
    """Physical lines before `data_offset`."""
    rows_valid: int = 0
    rows_rejected: int = 0
    blank_lines: int = 0
    rejects_parts: int = 0
    header: dict[str, Any] | None = None
    format: dict[str, Any] | None = None
    """How the file is read (`dialect.FileFormat.to_dict`), decided with the header."""

    def to_item(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Checkpoint:
        return cls(**plain(item))


VALIDATE, INGEST = "VALIDATE", "INGEST"


@dataclass(frozen=True)
class Lease:
    """The outcome of `JobStore.acquire`: whether the lease is ours, and the job as it stands
    (None if there is no such job)."""

    acquired: bool
    job: dict[str, Any] | None

    @property
    def holder(self) -> tuple[str, int] | None:
        """(owner, until) of a lease someone else holds on a job still parsing; None otherwise."""
        if self.acquired or self.job is None or self.job.get("status") != PARSING:
            return None
        return str(self.job.get("leaseOwner", "")), int(self.job.get("leaseUntil", 0))


@dataclass(frozen=True)
class Upload:
    """The object version a job ingests."""

    bucket: str
    key: str
    version_id: str
    size: int
    uploaded_at: str
    uploaded_at_ms: int
    sequencer: str


class JobStore:
    """Conditional writes on the job record; `table` is a boto3 DynamoDB `Table`."""

    def __init__(self, table: Any) -> None:
        self._table = table
        self._errors = table.meta.client.exceptions

    def create(self, job_id: str, upload: Upload, expires_at: int | None) -> bool:
        """Create the job in `PARSING`; False when it already exists (a repeated event)."""
        item: dict[str, Any] = {
            **job_key(job_id),
            # Written with the record, never after: a job is listed (GET /jobs) from its creation on.
            **recent_jobs_keys(job_id, upload.uploaded_at_ms),
            "status": PARSING,
            "bucket": upload.bucket,
            "key": upload.key,
            "versionId": upload.version_id,
            "objectSize": upload.size,
            "uploadedAt": upload.uploaded_at,
            "uploadedAtMs": upload.uploaded_at_ms,
            "sequencer": upload.sequencer,
            "startedAt": utc_now(),
            "rowsTotal": 0,
            "rowsValid": 0,
            "rowsRejected": 0,
            "chunksDone": 0,
            "rowsWritten": 0,
            "rowsSuperseded": 0,
            "leaseUntil": 0,
            "checkpoint": Checkpoint(VALIDATE, 0, 0, 0, 0, 0).to_item(),
        }
        if expires_at is not None:
            item["expiresAt"] = expires_at
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(jobId)")
        except self._errors.ConditionalCheckFailedException:
            return False
        return True

    def acquire(self, job_id: str, owner: str, now_ms: int, lease_until_ms: int) -> Lease:
        """Take the job's lease if it is still parsing and its lease is free, expired, or already
        `owner`'s: Lambda retries an asynchronous event with the same request id, so the retry
        of an invocation that died holding the lease takes its own lease over at once."""
        try:
            job = self._table.update_item(
                Key=job_key(job_id),
                UpdateExpression="SET leaseOwner = :owner, leaseUntil = :until",
                ConditionExpression="#status = :parsing AND (leaseUntil < :now OR leaseOwner = :owner)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":owner": owner,
                    ":until": lease_until_ms,
                    ":now": now_ms,
                    ":parsing": PARSING,
                },
                ReturnValues="ALL_NEW",
                # The job as it stands when the lease is not ours: no second read, no read units.
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )["Attributes"]
        except self._errors.ConditionalCheckFailedException as refused:
            return Lease(False, from_wire(refused.response.get("Item")))
        return Lease(True, job)

    def save_checkpoint(self, job_id: str, owner: str, checkpoint: Checkpoint) -> None:
        """Record progress and release the lease, so the continuation can take it."""
        self._update(
            job_id,
            owner,
            "SET #checkpoint = :checkpoint, rowsTotal = :total, rowsValid = :valid, rowsRejected = :rejected,"
            " leaseUntil = :zero",
            {
                ":checkpoint": checkpoint.to_item(),
                ":total": checkpoint.row,
                ":valid": checkpoint.rows_valid,
                ":rejected": checkpoint.rows_rejected,
                ":zero": 0,
            },
            {"#checkpoint": "checkpoint"},
        )

    def release(self, job_id: str, owner: str) -> None:
        """Give the lease up after an error, so Lambda's retry can resume from the checkpoint."""
        # If the lease was already taken over, or the job ended, there is nothing to release.
        with contextlib.suppress(self._errors.ConditionalCheckFailedException):
            self._update(job_id, owner, "SET leaseUntil = :zero", {":zero": 0})

    def queue(self, job_id: str, owner: str, summary: dict[str, Any]) -> None:
        """Parsing is over: every chunk is queued. `summary` holds totals and the final status."""
        names = {f"#{k}": k for k in summary}
        self._update(
            job_id,
            owner,
            "SET #status = :queued, queuedAt = :now, leaseUntil = :zero, " + ", ".join(f"#{k} = :{k}" for k in summary),
            {":queued": QUEUED, ":now": utc_now(), ":zero": 0, **{f":{k}": v for k, v in summary.items()}},
            {"#status": "status", **names},
        )

    def fail(self, job_id: str, owner: str, reason: str) -> None:
        self._update(
            job_id,
            owner,
            "SET #status = :failed, #error = :reason, finishedAt = :now, leaseUntil = :zero",
            {":failed": FAILED, ":reason": reason, ":now": utc_now(), ":zero": 0},
            {"#status": "status", "#error": "error"},
        )

    def _update(
        self, job_id: str, owner: str, expression: str, values: dict[str, Any], names: dict[str, str] | None = None
    ) -> None:
        # Only the lease holder writes, and only while the job is parsing.
        self._table.update_item(
            Key=job_key(job_id),
            UpdateExpression=expression,
            ConditionExpression="leaseOwner = :owner AND #st = :parsing",
            ExpressionAttributeNames={**(names or {}), "#st": "status"},
            ExpressionAttributeValues={**values, ":owner": owner, ":parsing": PARSING},
        )
