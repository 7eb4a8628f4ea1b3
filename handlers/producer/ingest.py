"""One producer invocation's work on a job: from its checkpoint to the end of the file or of its time.

A job runs in two phases, each resumable at any record boundary:

1. `VALIDATE` reads the whole file once, checking it is UTF-8 CSV with a usable header. A file
   that is not fails here, before a single chunk is sent ("nothing is sent").
2. `INGEST` reads it again from the first data row: valid rows are packed into chunks and sent,
   rejected rows go to the rejects report.

When time runs low, or the segment's report part is full, the segment stops at a boundary where
no chunk is half-packed, flushes what it sent, writes its report part and returns a checkpoint; the
next invocation resumes there and produces exactly the chunks a single pass would have. A chunk
never spans more than `MAX_CHUNK_SPAN_BYTES` of the file, so such a boundary always comes soon,
however many rejected rows follow a valid one; and since that rule depends on the file alone,
chunk boundaries are the same however the file is split into segments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from handlers.common.chunks import ROW_SPACE, Chunk, Row, Source, upload_tiebreak
from handlers.common.jobs import COMPLETE, COMPLETE_WITH_REJECTS
from handlers.common.signing import JobKeys
from handlers.common.validation import InvalidValue
from handlers.producer.csv_stream import FileProblem, RecordTuple, records
from handlers.producer.job_store import INGEST, VALIDATE, Checkpoint
from handlers.producer.packing import Budgets, ChunkPacker, encode_row, encoded_chunks
from handlers.producer.reports import RejectsReport, part_key, report_prefix
from handlers.producer.rows import Header, Rejected, normalized, parse_header
from handlers.producer.sender import ChunkSender

# A chunk closes once it spans this many bytes of the file, full or not: the segment can then
# always stop within this distance (a few milliseconds of parsing) when its time runs low.
MAX_CHUNK_SPAN_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """What the producer is configured with (environment variables set by the infra)."""

    queue_url: str
    upload_bucket: str
    reports_prefix: str
    rows_per_message: int
    budgets: Budgets
    """Bytes per chunk and per send call, from the queue's maximum message size."""
    max_upload_bytes: int
    """A larger object fails its job before it is read."""


class Clock:
    """The invocation's time: when to checkpoint, and how long retries may wait."""

    def __init__(self, remaining_ms: Callable[[], int]) -> None:
        self._remaining_ms = remaining_ms
        # Keep a fifth of the invocation (5–60 s) to flush sends, write the report and checkpoint.
        self.margin = min(60.0, max(5.0, remaining_ms() / 1000 * 0.2))

    def low(self, draining: float = 0.0) -> bool:
        """Time to stop: less than the margin is left, besides `draining` seconds the work already
        handed over still needs (sends in flight: the margin alone does not cover slow ones)."""
        return self._remaining_ms() / 1000 < self.margin + draining

    def seconds_until_low(self) -> float:
        return max(0.0, self._remaining_ms() / 1000 - self.margin)

    def seconds_left(self) -> float:
        """Time retries may still use, keeping a little for the checkpoint itself."""
        return self._remaining_ms() / 1000 - 2.0


@dataclass
class SegmentResult:
    """What a segment achieved: where to resume, or the job's totals once every chunk is queued."""

    checkpoint: Checkpoint
    finished: bool
    rows_parsed: int = 0
    rows_rejected: int = 0
    chunks_sent: int = 0
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Services:
    """The AWS clients and the thread pool a segment uses."""

    s3: Any
    sqs: Any
    executor: ThreadPoolExecutor
    keys: JobKeys
    """Each job's key for its chunks' MACs (the stack's signing secret, read on first use)."""
    on_send_retry: Callable[[], None] = lambda: None


def _records(services: Services, job: dict[str, Any], offset: int, line: int) -> Iterator[RecordTuple]:
    """The object's records from `offset` on, read as a stream (a range request)."""
    if offset >= int(job["objectSize"]):
        return iter(())
    body = services.s3.get_object(
        Bucket=job["bucket"], Key=job["key"], VersionId=job["versionId"], Range=f"bytes={offset}-"
    )["Body"]
    return records(body, offset, line)


def run_segment(job: dict[str, Any], services: Services, settings: Settings, clock: Clock) -> SegmentResult:
    """Advance the job from its checkpoint. Raises `FileProblem` (validation phase only)."""
    checkpoint = Checkpoint.from_item(job["checkpoint"])
    checkpoint.segment += 1
    if int(job["objectSize"]) > settings.max_upload_bytes:
        raise FileProblem(
            f"file too large: {job['objectSize']} bytes; this stack ingests files of at most"
            f" {settings.max_upload_bytes} bytes (maxUploadBytes)"
        )
    if checkpoint.phase == VALIDATE:
        checkpoint = _validate(job, checkpoint, services, clock)
        if checkpoint.phase == VALIDATE:
            return SegmentResult(checkpoint, finished=False)
    return _ingest(job, checkpoint, services, settings, clock)


def _validate(job: dict[str, Any], checkpoint: Checkpoint, services: Services, clock: Clock) -> Checkpoint:
    """Read to the end (or until time is low) checking encoding, CSV syntax and the header."""
    records = _records(services, job, checkpoint.offset, checkpoint.line)
    cp = replace(checkpoint)
    if cp.header is None:
        header_record, cp.blank_lines = _first_row(records)
        if header_record is None:
            raise FileProblem("empty file: no header row")
        fields, _line, end_offset, end_line, size, _blank = header_record
        if size:
            raise FileProblem(f"header row is {size} bytes long; not a header")
        cp.header = parse_header(fields).to_dict()
        cp.offset = cp.data_offset = end_offset
        cp.line = cp.data_line = end_line
    row = cp.row
    for _fields, _line, end_offset, end_line, _size, blank in records:
        if not blank:
            row += 1
            if row >= ROW_SPACE:
                raise FileProblem(f"too many rows: at most {ROW_SPACE - 1} data rows per file")
        if clock.low():
            return replace(cp, offset=end_offset, line=end_line, row=row)
    return replace(cp, phase=INGEST, offset=cp.data_offset, line=cp.data_line, row=0)


def _first_row(records: Iterator[RecordTuple]) -> tuple[RecordTuple | None, int]:
    """The first record that is not blank (the header), and the blank lines before it: blank lines
    count as `blankLines` wherever they are (README "CSV rules"), not only after the header."""
    blank_lines = 0
    for record in records:
        if not record[-1]:
            return record, blank_lines
        blank_lines += 1
    return None, blank_lines


def _ingest(
    job: dict[str, Any], checkpoint: Checkpoint, services: Services, settings: Settings, clock: Clock
) -> SegmentResult:
    assert checkpoint.header is not None, "validation sets the header"
    header = Header.from_dict(checkpoint.header)
    source = Source(bucket=job["bucket"], key=job["key"], versionId=job["versionId"])
    expires_at = int(job["expiresAt"]) if job.get("expiresAt") is not None else None
    tiebreak = upload_tiebreak(job.get("sequencer", ""), job["jobId"])

    def make_chunk(number: int, rows: tuple[Row, ...]) -> Chunk:
        return Chunk(
            jobId=job["jobId"],
            chunk=number,
            uploadedAtMs=int(job["uploadedAtMs"]),
            tiebreak=tiebreak,
            source=source,
            expiresAt=expires_at,
            rows=rows,
        )

    # Rows are encoded once, as they are packed, and a chunk's body is one join of them in its envelope.
    packer = ChunkPacker(
        encoded_chunks(make_chunk), checkpoint.chunk, settings.rows_per_message, settings.budgets.chunk_bytes, len
    )
    sender = ChunkSender(
        services.sqs,
        settings.queue_url,
        clock.seconds_left,
        services.executor,
        settings.budgets.batch_bytes,
        on_retry=services.on_send_retry,
        mac_key=services.keys.for_job(job["jobId"]),
    )
    report = RejectsReport(header)
    cp = replace(checkpoint)
    # The checkpoint's counters as locals while the records go by (this loop runs once per record),
    # written back below.
    offset, lines, row, valid, rejected, blank_lines = cp.offset, cp.line, cp.row, 0, 0, 0
    opened_at = 0  # where the open chunk's first row starts
    try:
        for fields, line, end_offset, end_line, size, blank in _records(services, job, offset, lines):
            if blank:
                blank_lines += 1
            else:
                row += 1
                try:
                    encoded = encode_row(row, *normalized(header, fields, size))
                except InvalidValue as invalid:
                    report.add(Rejected(row, line, str(invalid), fields))
                    rejected += 1
                else:
                    valid += 1
                    if packer.empty:
                        opened_at = offset
                    if chunk := packer.add(encoded):
                        sender.send(chunk)
            offset, lines = end_offset, end_line
            if offset - opened_at >= MAX_CHUNK_SPAN_BYTES and (chunk := packer.flush()):
                sender.send(chunk)
            if packer.empty and (clock.low(sender.drain_seconds()) or report.full):
                break
        else:
            if chunk := packer.flush():
                sender.send(chunk)
        cp.offset, cp.line, cp.row, cp.blank_lines = offset, lines, row, cp.blank_lines + blank_lines
        cp.rows_valid += valid
        cp.rows_rejected += rejected
        finished = packer.empty and cp.offset >= int(job["objectSize"])
        cp.chunk = packer.next_chunk
        sender.flush()
        if report.count:
            cp.rejects_parts += 1
            report.upload(
                services.s3, settings.upload_bucket, part_key(settings.reports_prefix, job["jobId"], cp.rejects_parts)
            )
    finally:
        report.close()
    parsed = valid + rejected
    result = SegmentResult(cp, finished, rows_parsed=parsed, rows_rejected=rejected, chunks_sent=sender.sent)
    if finished:
        result.summary = _summary(job, cp, header, settings)
    return result


def _summary(job: dict[str, Any], cp: Checkpoint, header: Header, settings: Settings) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "rowsTotal": cp.row,
        "rowsValid": cp.rows_valid,
        "rowsRejected": cp.rows_rejected,
        "blankLines": cp.blank_lines,
        "chunksTotal": cp.chunk,
        "extraColumns": list(header.extra),
        "finalStatus": COMPLETE_WITH_REJECTS if cp.rows_rejected else COMPLETE,
        "checkpoint": cp.to_item(),
    }
    if cp.rejects_parts:
        prefix = report_prefix(settings.reports_prefix, job["jobId"])
        summary["rejectsReport"] = f"s3://{settings.upload_bucket}/{prefix}"
        summary["rejectsParts"] = cp.rejects_parts
    return summary
