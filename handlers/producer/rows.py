"""The header and the rows: which of the file's columns are the schema's, and whether a row is valid.

The header is matched to the stack's schema (`handlers/common/schema.py`): a cell names a column
when it is one of the column's spellings, compared ignoring case, spaces, `-` and `_`. The columns
the schema does not declare are listed on the job (`extraColumns`, which the API shows), and the
parsed header is kept on the job record for resuming. A header row is data the uploader controls
and may hold personal data (a data row pasted where the header goes), so neither keeps an ignored
column's cell unless it looks like a column name: at most 64 characters after trimming, printable
(no control, format, bidi, zero-width or non-ASCII space character), no `@` (not an email), fewer
than 6 digits and under half of it digits (not a number, a phone number or an id), both as written
and in its NFKC form (where `＠` is `@` and `①` is `1`). Any other ignored column, an empty one
included, is named by position, 1-based, as the producer's reasons name columns: `column 4`. A
person's name typed as a column name still passes: it looks like a name because it is one.

A file's records are read into rows here, one way for the producer and for the local check
(`handlers/producer/check.py`): `read_block` takes a block of one-line records at once when every
one of them is a valid row, and otherwise each record by itself.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from handlers.common.chunks import Row
from handlers.common.schema import Column, Schema, Value
from handlers.common.validation import InvalidValue
from handlers.producer.csv_stream import MAX_RECORD_BYTES, FileProblem, LineRecords, RecordTuple, records_of

# The header is kept on the job record (for the rejects report and resuming), whose items DynamoDB
# caps at 400 KB: a wider header is not one this pipeline can hold.
MAX_HEADER_COLUMNS = 512
MAX_HEADER_CHARACTERS = 16 * 1024
# An ignored column's header cell is listed as written only when it is no longer than a database's
# column names: MySQL allows 64 characters
# (https://dev.mysql.com/doc/refman/8.0/en/identifier-length.html), PostgreSQL 63 bytes. Longer
# cells are more likely sentences, addresses or a pasted row than names.
MAX_COLUMN_NAME = 64
# As many digits as the shortest phone number this pipeline accepts (`normalize_phone`): a cell
# holding that many is a phone number, a date of birth or an id as likely as a name.
PHONE_LIKE_DIGITS = 6
_DIGIT = re.compile(r"\d")


class IncompleteHeader(FileProblem):
    """A header that does not name each of the schema's required columns: read with the wrong
    delimiter, it is one cell, or cells holding the delimiter that was right."""


@dataclass(frozen=True)
class Header:
    """The header row read against the schema: its width, where each of the schema's columns is,
    and what was ignored."""

    schema: Schema
    columns: tuple[str, ...]
    """One per column: the read ones as the file spells them, the ignored ones as `extra` lists them."""
    positions: tuple[int | None, ...]
    """Where each of the schema's columns is (in the schema's order), None for an optional one the
    file does not have: each of its rows' values is then None."""
    extra: tuple[str, ...]

    @property
    def width(self) -> int:
        return len(self.columns)

    @property
    def known(self) -> tuple[int, ...]:
        """Positions of the columns this pipeline reads, in the schema's order."""
        return tuple(position for position in self.positions if position is not None)

    @cached_property
    def checked(self) -> tuple[tuple[int, Column, int], ...]:
        """(index in the schema, column, position in the file) of each column the file has, in the
        order a row's cells are checked (`Schema.checked_order`): a row's reason is its first."""
        columns, positions = self.schema.columns, self.positions
        return tuple(
            (index, columns[index], position)
            for index in self.schema.checked_order
            if (position := positions[index]) is not None
        )

    def to_dict(self) -> dict[str, Any]:
        """The header as the job record keeps it: with the fingerprint of the schema it was read by."""
        return {
            "schema": self.schema.fingerprint,
            "columns": list(self.columns),
            "positions": list(self.positions),
            "extra": list(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], schema: Schema) -> Header:
        """The header `to_dict` kept, read against `schema`; `FileProblem` when the stack's schema is
        no longer the one the file was read by (deployed while the job ran): its rows would be read
        by one schema and its checkpoint by another."""
        if data.get("schema") != schema.fingerprint:
            raise FileProblem("the stack's schema changed while this file was being read; upload the file again")
        return cls(
            schema,
            tuple(data["columns"]),
            tuple(None if position is None else int(position) for position in data["positions"]),
            tuple(data["extra"]),
        )


@dataclass(frozen=True)
class Rejected:
    """A row that was not ingested, and why (`fields` are its cells, for the rejects report only)."""

    row: int
    line: int
    reason: str
    fields: list[str]


def oversized(row: int, line: int, size: int) -> Rejected:
    """A record too long to read (`csv_stream.MAX_RECORD_BYTES`): rejected unread."""
    return Rejected(row, line, _oversized_reason(size), [])


def _oversized_reason(size: int) -> str:
    return f"record is {size} bytes long; records over {MAX_RECORD_BYTES} bytes are not read"


def column_name(cell: str, position: int) -> str:
    """How an ignored column is listed: its trimmed header cell when that looks like a column name
    (module docstring), else `column <position>` (1-based).

    The cell is checked as written and in its NFKC form, and must pass both: compatibility
    characters (`＠`, `①`, `¹`) read as the `@` and digits they fold to, and the no-break space that
    NFKC folds to a space is still refused as written. A cell that passes is kept as written."""
    name = cell.strip()
    # https://docs.python.org/3/library/unicodedata.html#unicodedata.normalize
    return name if all(map(_looks_like_a_name, {name, unicodedata.normalize("NFKC", name)})) else f"column {position}"


def _looks_like_a_name(name: str) -> bool:
    digits = len(_DIGIT.findall(name))
    return (
        0 < len(name) <= MAX_COLUMN_NAME
        # `str.isprintable` is false for control (Cc), format (Cf: bidi controls, zero-width
        # characters, BOM), surrogate, private-use, unassigned and separator characters but the
        # ASCII space: https://docs.python.org/3/library/stdtypes.html#str.isprintable
        and name.isprintable()
        and "@" not in name
        and digits < PHONE_LIKE_DIGITS
        and 2 * digits < len(name)
    )


def parse_header(fields: list[str], schema: Schema) -> Header:
    """Match each cell to the schema's columns (`Schema.match_header`); each required column must be
    named exactly once, any other at most once."""
    if len(fields) > MAX_HEADER_COLUMNS or sum(map(len, fields)) > MAX_HEADER_CHARACTERS:
        raise FileProblem(
            f"header too wide: {len(fields)} columns, {sum(map(len, fields))} characters;"
            f" at most {MAX_HEADER_COLUMNS} columns and {MAX_HEADER_CHARACTERS} characters"
        )
    named: dict[str, list[int]] = {}
    for i, field in enumerate(fields):
        if (column := schema.match_header(field)) is not None:
            named.setdefault(column.name, []).append(i)
    for column in schema.columns:
        if len(positions := named.get(column.name, [])) > 1:
            # The cells shown matched a spelling the schema declares: column names, not data.
            shown = ", ".join(f"'{fields[i].strip()}' (column {i + 1})" for i in positions)
            raise FileProblem(f"header names the {column.name} column more than once: {shown}")
    missing = [column for column in schema.columns if column.required and column.name not in named]
    if missing:
        # Columns by count, never by content: a file without a header has personal data here.
        spellings = ", ".join(f"'{spelling}'" for column in missing for spelling in column.spellings)
        raise IncompleteHeader(
            f"incomplete header: missing {' and '.join(column.name for column in missing)} column(s); none of the"
            f" first row's {len(fields)} cells is named {spellings}"
        )
    positions = tuple(named[column.name][0] if column.name in named else None for column in schema.columns)
    known = {position for position in positions if position is not None}
    # The read columns keep their spelling (the rejects report's heading); the others are kept as
    # they are listed, so that the job record holds no ignored cell.
    columns = tuple(field if i in known else column_name(field, i + 1) for i, field in enumerate(fields))
    return Header(
        schema=schema,
        columns=columns,
        positions=positions,
        extra=tuple(column for i, column in enumerate(columns) if i not in known),
    )


def normalized(header: Header, fields: list[str], oversized: int = 0) -> tuple[Value, ...]:
    """A row's values, normalised, in the schema's order; `InvalidValue` with the first reason it
    fails: too long to have been read (`oversized` is its size), a width other than the header's,
    then each column's rule, in the order `Header.checked` gives."""
    if oversized:
        raise InvalidValue(_oversized_reason(oversized))
    if len(fields) != header.width:
        raise InvalidValue(f"has {len(fields)} fields; the header has {header.width}")
    values: list[Value] = [None] * len(header.positions)
    for index, column, position in header.checked:
        values[index] = column.normalize(fields[position])
    return tuple(values)


def normalized_rows(header: Header, cells: list[str]) -> list[list[Value]] | None:
    """`normalized` of rows given as one list of cells, row after row (each of the header's width),
    as one list of values per column, in the schema's order (`Column.normalize_many`: a few calls
    per column, not per cell); or None when a row would be rejected (then `normalized`, row by row,
    says which and why)."""
    width = header.width
    count = len(cells) // width
    columns: list[list[Value]] = []
    for column, position in zip(header.schema.columns, header.positions, strict=True):
        if position is None:
            columns.append([None] * count)
        elif (values := column.normalize_many(cells[position::width])) is None:
            return None
        else:
            columns.append(values)
    return columns


def validate_row(header: Header, fields: list[str], row: int, line: int) -> Row | Rejected:
    """A normalised `Row`, or the `Rejected` row with the first reason it fails."""
    try:
        values = normalized(header, fields)
    except InvalidValue as invalid:
        return Rejected(row, line, str(invalid), fields)
    return Row(row=row, values=values)


# --- reading a file's records ------------------------------------------------------------------

Block = LineRecords | RecordTuple
"""An item of `csv_stream.blocks`: a block of one-line records, or one record by itself."""

Outcome = tuple[Value, ...] | str | None
"""What a record is: a valid row's values, the reason its row is rejected, or None (a blank record,
not a row)."""


@dataclass(frozen=True)
class ValidLines:
    """A block of one-line records that are all valid rows, taken at once: their values by column."""

    block: LineRecords
    columns: list[list[Value]]
    """One list per schema column, in the schema's order, a value per row (`normalized_rows`)."""


def read_block(header: Header, block: Block) -> ValidLines | Iterator[tuple[RecordTuple, Outcome]]:
    """A block as the producer reads it: `ValidLines` when it is a block of one-line records, none
    blank, each as wide as the header and a valid row; otherwise each of its records with what it
    is. Both give the same rows, values and reasons (tests/handlers/test_producer_blocks.py)."""
    if isinstance(block, LineRecords) and not block.maybe_blank:
        cells = block.cells(header.width)
        if cells is not None and (columns := normalized_rows(header, cells)) is not None:
            return ValidLines(block, columns)
    return _outcomes(header, block)


def _outcomes(header: Header, block: Block) -> Iterator[tuple[RecordTuple, Outcome]]:
    for record in records_of(block):
        fields, _line, _end_offset, _end_line, size, blank = record
        if blank:
            yield record, None
            continue
        try:
            outcome: Outcome = normalized(header, fields, size)
        except InvalidValue as invalid:
            outcome = str(invalid)
        yield record, outcome
