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

Both passes take a block of one-line records (`csv_stream.LineRecords`: almost every block of a
file of rows) at once: the validation pass only looks at its clock once per record, and the ingest
pass normalises, encodes and packs a block of valid rows by column, a chunk at a time. Any other
record (quoted, blank, rejected, oversized) is taken by itself. Both ways give the same chunks,
checkpoints and reports (tests/handlers/test_producer_blocks.py).

Rows are read by the stack's schema (`Settings.schema`), through `rows.read_block`, and the header
through `read_header`: the local check of a file (`handlers/producer/check.py`) reads with the same
two, so its answer is the producer's.
"""

from __future__ import annotations

import io
import json
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import chain, islice
from time import monotonic
from typing import Any

from handlers.common.chunks import ROW_SPACE, Chunk, Row, Source, upload_tiebreak
from handlers.common.jobs import COMPLETE, COMPLETE_WITH_REJECTS
from handlers.common.schema import DEFAULT_SCHEMA, Schema
from handlers.common.signing import JobKeys
from handlers.producer.csv_stream import ByteStream, FileProblem, LineRecords, RecordTuple, blocks, records_of
from handlers.producer.dialect import FileFormat, Reading, detect, how_read, reading_for
from handlers.producer.job_store import INGEST, VALIDATE, Checkpoint
from handlers.producer.packing import (
    Budgets,
    ChunkPacker,
    EncodedChunk,
    RowEncoder,
    encode_row,
    encoded_chunks,
    max_row_bytes,
)
from handlers.producer.reports import RejectsReport, part_key, report_prefix
from handlers.producer.rows import (
    Block,
    Header,
    IncompleteHeader,
    Outcome,
    Rejected,
    ValidLines,
    parse_header,
    read_block,
)
from handlers.producer.sender import ChunkSender
from handlers.producer.sources import DEFAULT_MAX_DECOMPRESSED_BYTES, skipped, text_stream

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
    schema: Schema = DEFAULT_SCHEMA
    """What the rows are (the stack's `csv-ingest:schema`; app.py passes the one its environment holds)."""
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
    """A `.gz` upload that decompresses to more fails its job, at that size (`csv-ingest:maxDecompressedBytes`)."""


class Clock:
    """The invocation's time: when to checkpoint, and how long retries may wait."""

    def __init__(self, remaining_ms: Callable[[], int]) -> None:
        self._remaining_ms = remaining_ms
        remaining = remaining_ms() / 1000
        # Keep a fifth of the invocation (5–60 s) to flush sends, write the report and checkpoint.
        self.margin = min(60.0, max(5.0, remaining * 0.2))
        self.usable = max(0.0, remaining - self.margin)
        """The seconds the invocation had for its work, before the margin."""

    def low(self, draining: float = 0.0) -> bool:
        """Time to stop: less than the margin is left, besides `draining` seconds the work already
        handed over still needs (sends in flight: the margin alone does not cover slow ones)."""
        return self._remaining_ms() / 1000 < self.margin + draining

    def first_low(self, records: int) -> int | None:
        """`low()` after each of `records` records already read, as a segment looks after each: the
        number of the first after which time is low (1 for the first), or None."""
        remaining_ms, margin = self._remaining_ms, self.margin
        for record in range(1, records + 1):
            if remaining_ms() / 1000 < margin:
                return record
        return None

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


def _object(services: Services, job: dict[str, Any], offset: int) -> ByteStream:
    """The object's bytes from `offset` on, read as a stream (a range request; none past the end,
    which S3 would answer 416)."""
    if offset >= int(job["objectSize"]):
        return io.BytesIO(b"")
    return services.s3.get_object(
        Bucket=job["bucket"], Key=job["key"], VersionId=job["versionId"], Range=f"bytes={offset}-"
    )["Body"]


def _blocks(
    services: Services,
    job: dict[str, Any],
    settings: Settings,
    fmt: FileFormat,
    position: tuple[int, int],
    clock: Clock,
) -> Iterator[Block]:
    """The file's records from `position` (offset, line) on (`csv_stream.blocks`): an offset of the
    reader's text, which is the object's own bytes for a plain file (read from there), and for any
    other is reached by reading the object again from its first byte (`FileFormat.plain`). That
    costs time in proportion to the offset, and may take at most half of what the invocation has
    (`resume_problem`): the other half moves the job on, so a chain of invocations always ends."""
    offset, line = position
    if fmt.plain:
        return blocks(_object(services, job, offset), offset, line, delimiter=fmt.delimiter)
    started = monotonic()
    text = skipped(_text(_object(services, job, 0), fmt, settings.max_decompressed_bytes), offset)
    if (problem := resume_problem(fmt, offset, monotonic() - started, clock.usable)) is not None:
        raise problem
    return blocks(text, offset, line, delimiter=fmt.delimiter)


def resume_problem(fmt: FileFormat, offset: int, spent: float, budget: float) -> FileProblem | None:
    """Why the job cannot go on when reading the file again to `offset` took `spent` seconds of the
    `budget` the invocation had before its margin: more than half (README "How a file is ingested")."""
    if spent <= budget / 2:
        return None
    kind = "a gzip file" if fmt.gzip else f"a {fmt.encoding} file"
    return FileProblem(
        f"file too large to resume: {kind} cannot be read from its middle, and reading it again to byte offset"
        f" {offset} took {spent:.0f} s of the {budget:.0f} s this invocation had; give the producer more time or"
        " CPU (csv-ingest:producerTimeoutSeconds, csv-ingest:producerMemoryMb), or upload the file in smaller pieces"
    )


def _text(stream: ByteStream, reading: Reading | FileFormat, max_decompressed_bytes: int) -> ByteStream:
    return text_stream(
        stream, gzip=reading.gzip, encoding=reading.encoding, max_decompressed_bytes=max_decompressed_bytes
    )


def open_upload(
    stream: ByteStream, key: str, schema: Schema, max_decompressed_bytes: int
) -> tuple[FileFormat, HeaderRead]:
    """An upload read from its first byte (`stream`): how it is read (`dialect`: its key, the
    stack's format, its header line) and its header. The producer's validation pass starts here, and
    so does the local check of a file (`handlers/producer/check.py`)."""
    reading = reading_for(key, schema.format)
    text = _text(stream, reading, max_decompressed_bytes)
    fmt, text = detect(text, reading, lambda row: _header_problem(row, schema))
    return fmt, read_header(blocks(text, delimiter=fmt.delimiter), schema, how_read(fmt, schema.format))


def _header_problem(fields: list[str], schema: Schema) -> str | None:
    try:
        parse_header(fields, schema)
    except FileProblem as problem:
        return str(problem)
    return None


def run_segment(job: dict[str, Any], services: Services, settings: Settings, clock: Clock) -> SegmentResult:
    """Advance the job from its checkpoint. Raises `FileProblem` (validation phase only)."""
    checkpoint = Checkpoint.from_item(job["checkpoint"])
    checkpoint.segment += 1
    check_size(int(job["objectSize"]), settings.max_upload_bytes)
    if checkpoint.phase == VALIDATE:
        _packer(job, settings, 0)  # a key too long for a chunk of this schema fails the job before it starts
        checkpoint = _validate(job, checkpoint, services, settings, clock)
        if checkpoint.phase == VALIDATE:
            return SegmentResult(checkpoint, finished=False)
    return _ingest(job, checkpoint, services, settings, clock)


def check_size(size: int, max_upload_bytes: int) -> None:
    """`FileProblem` for a file larger than the stack ingests, before a byte of it is read."""
    if size > max_upload_bytes:
        raise FileProblem(
            f"file too large: {size} bytes; this stack ingests files of at most {max_upload_bytes} bytes"
            " (maxUploadBytes)"
        )


def too_many_rows() -> FileProblem:
    """A file of more data rows than a row's version can number (`chunks.ROW_SPACE`)."""
    return FileProblem(f"too many rows: at most {ROW_SPACE - 1} data rows per file")


@dataclass(frozen=True)
class HeaderRead:
    """A file's header, and where its data rows start."""

    header: Header
    blank_lines: int
    """Blank lines before the header."""
    end_offset: int
    end_line: int
    rest: Iterator[Block]
    """The file's blocks after the header."""


def read_header(read: Iterator[Block], schema: Schema, how: str = "") -> HeaderRead:
    """The first record that is not blank, read as the header by `schema`; `FileProblem` for an
    empty file, a header too long to read, or one without the schema's required columns (then
    followed by `how` the file was read, `dialect.how_read`: the delimiter may be what is wrong)."""
    header_record, blank_lines, rest = _first_row(read)
    if header_record is None:
        raise FileProblem("empty file: no header row")
    fields, _line, end_offset, end_line, size, _blank = header_record
    if size:
        raise FileProblem(f"header row is {size} bytes long; not a header")
    try:
        header = parse_header(fields, schema)
    except IncompleteHeader as problem:
        raise FileProblem(f"{problem}; {how}" if how else str(problem)) from None
    return HeaderRead(header, blank_lines, end_offset, end_line, chain(rest, read))


def _validate(
    job: dict[str, Any], checkpoint: Checkpoint, services: Services, settings: Settings, clock: Clock
) -> Checkpoint:
    """Read to the end (or until time is low) checking encoding, CSV syntax and the header."""
    cp = replace(checkpoint)
    if cp.header is None:
        fmt, start = open_upload(
            _object(services, job, 0), job["key"], settings.schema, settings.max_decompressed_bytes
        )
        cp.format, cp.header, cp.blank_lines = fmt.to_dict(), start.header.to_dict(), start.blank_lines
        cp.offset = cp.data_offset = start.end_offset
        cp.line = cp.data_line = start.end_line
        read = start.rest
    else:
        read = _blocks(services, job, settings, FileFormat.from_dict(cp.format), (cp.offset, cp.line), clock)
    row = cp.row
    # One look at the clock per record, as in the ingest pass: a segment stops at any record.
    for block in read:
        if isinstance(block, LineRecords) and not block.maybe_blank and row + len(block.contents) < ROW_SPACE:
            # Rows only, one per line: nothing to check but the time.
            if (stop := clock.first_low(len(block.contents))) is not None:
                return replace(cp, offset=block.ends[stop], line=block.lines_before + stop, row=row + stop)
            row += len(block.contents)
            continue
        for end_offset, end_line, blank in _boundaries(block):
            if not blank:
                row += 1
                if row >= ROW_SPACE:
                    raise too_many_rows()
            if clock.low():
                return replace(cp, offset=end_offset, line=end_line, row=row)
    return replace(cp, phase=INGEST, offset=cp.data_offset, line=cp.data_line, row=0)


def _boundaries(block: Block) -> Iterable[tuple[int, int, bool]]:
    """Where each record of a block ends (offset, lines) and whether it is blank."""
    if isinstance(block, LineRecords):
        return zip(islice(block.ends, 1, None), block.end_lines(), block.blank(), strict=True)
    _fields, _line, end_offset, end_line, _size, blank = block
    return ((end_offset, end_line, blank),)


def _first_row(read: Iterator[Block]) -> tuple[RecordTuple | None, int, list[Block]]:
    """The first record that is not blank (the header), the blank lines before it, and the rest of
    its block: blank lines count as `blankLines` wherever they are (README "CSV rules"), not only
    after the header."""
    blank_lines = 0
    for block in read:
        for index, record in enumerate(records_of(block), 1):
            if not record[-1]:
                rest = [block.after(index)] if isinstance(block, LineRecords) and index < len(block.contents) else []
                return record, blank_lines, rest
            blank_lines += 1
    return None, blank_lines, []


def _chunks_of(job: dict[str, Any], settings: Settings) -> Callable[[int, tuple[Row, ...]], Chunk]:
    """The job's chunks: number and rows in the envelope every chunk of the job shares."""
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
            schema=settings.schema.fingerprint,
            rows=rows,
        )

    return make_chunk


def _packer(job: dict[str, Any], settings: Settings, next_chunk: int) -> ChunkPacker[str, EncodedChunk]:
    """The job's packer, from chunk `next_chunk`: rows are encoded once, as they are packed, and a
    chunk's body is one join of them in its envelope. `FileProblem` when the job's envelope leaves no
    room for the schema's largest row: the plan checks an ordinary upload's (`row_budget_problem`), and
    only a key of characters JSON escapes (six bytes for a control character) makes one longer."""
    try:
        return ChunkPacker(
            encoded_chunks(_chunks_of(job, settings)),
            next_chunk,
            settings.rows_per_message,
            settings.budgets.chunk_bytes,
            len,
            max_row_bytes=max_row_bytes(settings.schema),
        )
    except ValueError:
        raise FileProblem(
            f"the object's key is {len(job['key'].encode())} bytes long and takes {len(json.dumps(job['key']))} in"
            " each chunk, which leaves no room for a row of this schema: upload the file under a shorter key"
            " (characters outside printable ASCII take six bytes or more), or raise csv-ingest:maxMessageBytes"
        ) from None


def _ingest(
    job: dict[str, Any], checkpoint: Checkpoint, services: Services, settings: Settings, clock: Clock
) -> SegmentResult:
    assert checkpoint.header is not None, "validation sets the header"
    header = Header.from_dict(checkpoint.header, settings.schema)
    encoder = RowEncoder(settings.schema)
    packer = _packer(job, settings, checkpoint.chunk)
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
    progress = _Progress(header, encoder, cp, packer, sender, report, clock)
    try:
        fmt = FileFormat.from_dict(cp.format)
        read_to_end = False
        for block in _blocks(services, job, settings, fmt, (cp.offset, cp.line), clock):
            if progress.take(block):
                break
        else:
            read_to_end = True
            if chunk := packer.flush():
                sender.send(chunk)
        cp.offset, cp.line, cp.row = progress.offset, progress.lines, progress.row
        cp.blank_lines += progress.blank_lines
        cp.rows_valid += progress.valid
        cp.rows_rejected += progress.rejected
        finished = read_to_end
        cp.chunk = packer.next_chunk
        sender.flush()
        if report.count:
            cp.rejects_parts += 1
            report.upload(
                services.s3, settings.upload_bucket, part_key(settings.reports_prefix, job["jobId"], cp.rejects_parts)
            )
    finally:
        report.close()
    valid, rejected = progress.valid, progress.rejected
    parsed = valid + rejected
    result = SegmentResult(cp, finished, rows_parsed=parsed, rows_rejected=rejected, chunks_sent=sender.sent)
    if finished:
        result.summary = _summary(job, cp, header, settings)
    return result


class _Progress:
    """The ingest pass through the records: where it is, what it counted, and when to stop. After
    each record: a chunk that spans `MAX_CHUNK_SPAN_BYTES` of the file closes, and whenever no
    chunk is open, the segment looks at its clock (and at its report's size) to stop there."""

    def __init__(
        self,
        header: Header,
        encoder: RowEncoder,
        checkpoint: Checkpoint,
        packer: ChunkPacker[str, EncodedChunk],
        sender: ChunkSender,
        report: RejectsReport,
        clock: Clock,
    ) -> None:
        self._header, self._encoder = header, encoder
        self._packer, self._sender, self._report, self._clock = packer, sender, report, clock
        self.offset, self.lines, self.row = checkpoint.offset, checkpoint.line, checkpoint.row
        self.valid = self.rejected = self.blank_lines = 0
        self._opened_at = 0  # where the open chunk's first row starts

    def take(self, block: Block) -> bool:
        """Take a block's records (a block of valid rows at once); True to stop after the last taken."""
        taken = read_block(self._header, block)
        if isinstance(taken, ValidLines):
            lines = taken.block
            return self._valid_rows(self._encoder.rows(self.row + 1, taken.columns), lines.ends, lines.lines_before)
        return any(self._record(record, outcome) for record, outcome in taken)

    def _record(self, record: RecordTuple, outcome: Outcome) -> bool:
        fields, line, end_offset, end_line, _size, _blank = record
        if outcome is None:
            self.blank_lines += 1
        else:
            self.row += 1
            if isinstance(outcome, str):
                self._report.add(Rejected(self.row, line, outcome, fields))
                self.rejected += 1
            else:
                encoded = encode_row(self.row, outcome)
                self.valid += 1
                if self._packer.empty:
                    self._opened_at = self.offset
                if chunk := self._packer.add(encoded):
                    self._sender.send(chunk)
        self.offset, self.lines = end_offset, end_line
        return self._after_record()

    def _valid_rows(self, encoded: list[str], ends: list[int], lines_before: int) -> bool:
        """Rows that are all valid, each one line, the k-th ending at `ends[k + 1]`: taken as
        `_record` takes them, a chunk at a time."""
        taken = 0
        while taken < len(encoded):
            if self._packer.empty:
                self._opened_at = ends[taken]
            # The first row whose end is `MAX_CHUNK_SPAN_BYTES` past the chunk's start closes it.
            spanning = bisect_left(ends, self._opened_at + MAX_CHUNK_SPAN_BYTES, taken + 1)
            start = taken
            taken, chunk = self._packer.add_many(encoded, taken, min(len(encoded), spanning))
            self.row += taken - start
            self.valid += taken - start
            self.offset, self.lines = ends[taken], lines_before + taken
            if chunk:
                self._sender.send(chunk)
            if (chunk or taken == spanning) and self._after_record():
                return True
        return False

    def _after_record(self) -> bool:
        """Close a chunk that spans enough of the file; whether to stop here."""
        if self.offset - self._opened_at >= MAX_CHUNK_SPAN_BYTES and (chunk := self._packer.flush()):
            self._sender.send(chunk)
        return self._packer.empty and (self._clock.low(self._sender.drain_seconds()) or self._report.full)


def _summary(job: dict[str, Any], cp: Checkpoint, header: Header, settings: Settings) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "rowsTotal": cp.row,
        "rowsValid": cp.rows_valid,
        "rowsRejected": cp.rows_rejected,
        "blankLines": cp.blank_lines,
        "chunksTotal": cp.chunk,
        "extraColumns": list(header.extra),
        "format": FileFormat.from_dict(cp.format).to_dict(),
        "finalStatus": COMPLETE_WITH_REJECTS if cp.rows_rejected else COMPLETE,
        "checkpoint": cp.to_item(),
    }
    if cp.rejects_parts:
        prefix = report_prefix(settings.reports_prefix, job["jobId"])
        summary["rejectsReport"] = f"s3://{settings.upload_bucket}/{prefix}"
        summary["rejectsParts"] = cp.rejects_parts
    return summary
