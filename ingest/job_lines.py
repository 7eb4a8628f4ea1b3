"""Each job's start and end as one line each, for `local up`'s terminal, read from the functions' log lines.

`local up` shows a summary by default, not every log line (`local.console`): this is the summary's
part that knows the pipeline. It follows the lines the producer and the worker log as a job goes
(`handlers/producer/app.py`, `handlers/worker/app.py`): the producer creates the job, then queues
its chunks and logs how many; the worker logs each chunk written. A job has ended when every chunk
the producer queued has been written (the worker's last write is what finishes the job record), or
when the producer failed it. The job record stays the authority (`python -m ingest job ID`): these
lines only say when to look.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ingest.output import shown

# The handlers' messages that mark a job's course, and the fields each carries besides `jobId`.
JOB_CREATED = "job created"  # producer: key, size
CHUNKS_QUEUED = "every chunk queued"  # producer: chunksTotal, finalStatus, rowsTotal, rowsValid, rowsRejected
JOB_FAILED = "file cannot be ingested; job failed"  # producer, a warning: reason
CHUNK_WRITTEN = "chunk written"  # worker: chunk (its number)


@dataclass
class _Course:
    """What the lines said so far of one job."""

    queued: Mapping[str, Any] | None = None
    written: set[Any] = field(default_factory=set)


class JobSummary:
    """A `local.console.Summary`: the lines to show for a function's log line that starts or ends a
    job (nothing for the other lines of a job's course; None for lines that are not about jobs)."""

    def __init__(self) -> None:
        self._jobs: dict[str, _Course] = {}

    def __call__(self, source: str, record: Mapping[str, Any] | None, text: str) -> list[str] | None:
        if record is None or not isinstance(record.get("jobId"), str):
            return None
        job_id, message = record["jobId"], record.get("message")
        if message == JOB_CREATED:
            self._jobs.setdefault(job_id, _Course())
            return [f"job {job_id} started: {shown(record.get('key'))} ({_count(record.get('size'))} bytes)"]
        if message == JOB_FAILED:
            self._jobs.pop(job_id, None)
            return [f"job {job_id} finished: FAILED: {shown(record.get('reason'))}"]
        if message == CHUNKS_QUEUED:
            self._jobs.setdefault(job_id, _Course()).queued = record
            return self._ended(job_id)
        if message == CHUNK_WRITTEN:
            self._jobs.setdefault(job_id, _Course()).written.add(record.get("chunk"))
            return self._ended(job_id)
        return None

    def _ended(self, job_id: str) -> list[str]:
        """The job's last line once every chunk queued is written (chunks may be written before the
        producer has said how many it queued); nothing before."""
        course = self._jobs[job_id]
        queued = course.queued
        if queued is None or len(course.written) < int(queued.get("chunksTotal", 0)):
            return []
        del self._jobs[job_id]
        return [
            f"job {job_id} finished: {shown(queued.get('finalStatus'))}: {_count(queued.get('rowsTotal'))} rows,"
            f" {_count(queued.get('rowsValid'))} valid, {_count(queued.get('rowsRejected'))} rejected"
        ]


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else shown(value)
