"""What the producer would make of a local file, without AWS: the dry run of `ingest upload --check FILE`.

The file is read by the producer's own code: `ingest.open_upload` for how it is read (gzip,
encoding, delimiter: `dialect`) and its header, `csv_stream.blocks` for its records,
`rows.read_block` for its rows (one-line blocks of valid rows at once, any other record by itself),
and the same file checks (`ingest.check_size`, `ingest.too_many_rows`). So the answer is the
producer's: the same rows valid and rejected, for the same reasons, the same blank lines and ignored
columns, and a file the producer would fail is refused with the job's very reason
(tests/handlers/test_check.py runs both on the same files). Nothing is packed, sent or written.

The answer holds no cell of the file's rows: counts, reasons (which name columns and rules, never
values), row and line numbers, and the header's mapping. A mapped column's spelling is the file's
header cell that named it, which matched one of the schema's spellings (ignoring case, spaces, `-`
and `_`); an ignored column is listed as the job lists it (`rows.column_name`). Whoever shows the
answer on a terminal still escapes what it prints: a spelling may hold spaces of any kind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from handlers.common.chunks import ROW_SPACE
from handlers.common.schema import Schema
from handlers.producer.csv_stream import ByteStream, FileProblem
from handlers.producer.dialect import FileFormat
from handlers.producer.ingest import check_size, open_upload, too_many_rows
from handlers.producer.rows import Header, Outcome, ValidLines, read_block

# Rejected rows listed one by one (in file order); the counts per reason cover them all. A file of
# rejects only would otherwise hold its whole size in memory again as a list.
MAX_LISTED_REJECTS = 1000


@dataclass(frozen=True)
class ColumnMatch:
    """Where the file has one of the schema's columns."""

    column: str
    """The schema's name of the column."""
    spelling: str | None
    """The header cell that names it, as the file spells it; None when the file has no such column."""
    position: int | None
    """Its position in the file, 1-based (as reasons and ignored columns name positions)."""


@dataclass(frozen=True)
class RejectedRow:
    """A row the producer would reject: its number, the line it starts on, and why."""

    row: int
    line: int
    reason: str


@dataclass(frozen=True)
class FileChecked:
    """A file the producer would ingest, and what it would make of it."""

    format: FileFormat
    """How it is read: gzip or not, its encoding, its delimiter (and whether that was detected)."""
    columns: tuple[ColumnMatch, ...]
    """The schema's columns in its order, each with where the file has it."""
    ignored: tuple[str, ...]
    """The file's other columns, as the job lists them (`extraColumns`)."""
    rows: int
    """Data rows (blank lines are not rows): `rowsTotal`."""
    valid: int
    rejected: int
    blank_lines: int
    rejects: tuple[RejectedRow, ...]
    """The first `MAX_LISTED_REJECTS` rejected rows, in file order."""
    reasons: Mapping[str, int]
    """How many rows were rejected for each reason, most frequent first."""


@dataclass(frozen=True)
class FileRefused:
    """A file the producer would fail as a whole, nothing of it sent: the job's reason."""

    problem: str


def check_upload(
    stream: ByteStream, size: int, schema: Schema, max_upload_bytes: int, *, name: str, max_decompressed_bytes: int
) -> FileChecked | FileRefused:
    """Read `stream` (a file's bytes from its first, `size` of them) as the producer would read it
    under the key `name` (its suffix says gzip, or tab) for a stack whose schema is `schema`, whose
    uploads are at most `max_upload_bytes` and decompress to at most `max_decompressed_bytes`."""
    try:
        check_size(size, max_upload_bytes)
        fmt, start = open_upload(stream, name, schema, max_decompressed_bytes)
        counts = _Counts(blank_lines=start.blank_lines)
        for block in start.rest:
            taken = read_block(start.header, block)
            if isinstance(taken, ValidLines):
                counts.rows += len(taken.block.contents)
            else:
                for record, outcome in taken:
                    counts.take(record[1], outcome)  # the line it starts on
            if counts.rows >= ROW_SPACE:
                raise too_many_rows()
    except FileProblem as problem:
        return FileRefused(str(problem))
    return counts.checked(fmt, start.header)


class _Counts:
    """The rows read so far: valid ones are counted, rejected ones counted by reason and listed."""

    def __init__(self, blank_lines: int) -> None:
        self.rows = 0
        self.blank_lines = blank_lines
        self.rejects: list[RejectedRow] = []
        self.reasons: Counter[str] = Counter()

    def take(self, line: int, outcome: Outcome) -> None:
        """One record by itself: blank (None), rejected (its reason) or a valid row (its values)."""
        if outcome is None:
            self.blank_lines += 1
            return
        self.rows += 1
        if isinstance(outcome, str):
            self.reasons[outcome] += 1
            if len(self.rejects) < MAX_LISTED_REJECTS:
                self.rejects.append(RejectedRow(self.rows, line, outcome))

    def checked(self, fmt: FileFormat, header: Header) -> FileChecked:
        rejected = sum(self.reasons.values())
        return FileChecked(
            format=fmt,
            columns=tuple(
                ColumnMatch(column.name, None if position is None else header.columns[position], _first(position))
                for column, position in zip(header.schema.columns, header.positions, strict=True)
            ),
            ignored=header.extra,
            rows=self.rows,
            valid=self.rows - rejected,
            rejected=rejected,
            blank_lines=self.blank_lines,
            rejects=tuple(self.rejects),
            reasons=dict(self.reasons.most_common()),
        )


def _first(position: int | None) -> int | None:
    return None if position is None else position + 1
