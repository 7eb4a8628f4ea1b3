"""The header and the rows: which columns mean what, and whether a row is valid.

The columns this pipeline does not read are listed on the job (`extraColumns`, which the API
shows), and the parsed header is kept on the job record for resuming. A header row is data the
uploader controls and may hold personal data (a data row pasted where the header goes), so neither
keeps an ignored column's cell unless it looks like a column name: at most 64 characters after
trimming, printable (no control, format, bidi, zero-width or non-ASCII space character), no `@`
(not an email), fewer than 6 digits and under half of it digits (not a number, a phone number or
an id), both as written and in its NFKC form (where `＠` is `@` and `①` is `1`). Any other ignored
column, an empty one included, is named by position, 1-based, as the producer's reasons name
columns: `column 4`. A person's name typed as a column name still passes:
it looks like a name because it is one.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from handlers.common.chunks import Row
from handlers.common.validation import (
    InvalidValue,
    normalize_email,
    normalize_emails,
    normalize_name,
    normalize_names,
    normalize_phone,
    normalize_phones,
)
from handlers.producer.csv_stream import MAX_RECORD_BYTES, FileProblem

REQUIRED = ("name", "mail")
# The header is kept on the job record (for the rejects report and resuming), whose items DynamoDB
# caps at 400 KB: a wider header is not one this pipeline can hold.
MAX_HEADER_COLUMNS = 512
MAX_HEADER_CHARACTERS = 16 * 1024
# Accepted spellings of each column, after trimming and lower-casing.
ALIASES = {"name": ("name",), "mail": ("mail", "email"), "phone": ("phone",)}
# An ignored column's header cell is listed as written only when it is no longer than a database's
# column names: MySQL allows 64 characters
# (https://dev.mysql.com/doc/refman/8.0/en/identifier-length.html), PostgreSQL 63 bytes. Longer
# cells are more likely sentences, addresses or a pasted row than names.
MAX_COLUMN_NAME = 64
# As many digits as the shortest phone number this pipeline accepts (`normalize_phone`): a cell
# holding that many is a phone number, a date of birth or an id as likely as a name.
PHONE_LIKE_DIGITS = 6
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Header:
    """The header row: its width, where each known column is, and what was ignored."""

    columns: tuple[str, ...]
    """One per column: the read ones as the file spells them, the ignored ones as `extra` lists them."""
    name: int
    mail: int
    phone: int | None
    extra: tuple[str, ...]

    @property
    def width(self) -> int:
        return len(self.columns)

    @property
    def known(self) -> tuple[int, ...]:
        """Positions of the columns this pipeline reads: name, mail, then phone if present."""
        return (self.name, self.mail) if self.phone is None else (self.name, self.mail, self.phone)

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "name": self.name,
            "mail": self.mail,
            "phone": self.phone,
            "extra": list(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Header:
        phone = data.get("phone")
        return cls(
            tuple(data["columns"]),
            int(data["name"]),
            int(data["mail"]),
            None if phone is None else int(phone),
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


def parse_header(fields: list[str]) -> Header:
    """Match columns case-insensitively after trimming; `name` and `mail` (or `email`) required."""
    if len(fields) > MAX_HEADER_COLUMNS or sum(map(len, fields)) > MAX_HEADER_CHARACTERS:
        raise FileProblem(
            f"header too wide: {len(fields)} columns, {sum(map(len, fields))} characters;"
            f" at most {MAX_HEADER_COLUMNS} columns and {MAX_HEADER_CHARACTERS} characters"
        )
    names = [field.strip().lower() for field in fields]
    found: dict[str, int] = {}
    for column, spellings in ALIASES.items():
        positions = [i for i, name in enumerate(names) if name in spellings]
        if len(positions) > 1:
            shown = ", ".join(f"'{fields[i].strip()}' (column {i + 1})" for i in positions)
            raise FileProblem(f"header names the {column} column more than once: {shown}")
        if positions:
            found[column] = positions[0]
    missing = [column for column in REQUIRED if column not in found]
    if missing:
        # Columns by count, never by content: a file without a header has personal data here.
        spellings = ", ".join(f"'{s}'" for column in missing for s in ALIASES[column])
        raise FileProblem(
            f"incomplete header: missing {' and '.join(missing)} column(s); none of the first row's"
            f" {len(fields)} cells is named {spellings}"
        )
    known = set(found.values())
    # The read columns keep their spelling (the rejects report's heading); the others are kept as
    # they are listed, so that the job record holds no ignored cell.
    columns = tuple(field if i in known else column_name(field, i + 1) for i, field in enumerate(fields))
    return Header(
        columns=columns,
        name=found["name"],
        mail=found["mail"],
        phone=found.get("phone"),
        extra=tuple(column for i, column in enumerate(columns) if i not in known),
    )


def normalized(header: Header, fields: list[str], oversized: int = 0) -> tuple[str, str, str | None]:
    """A row's email, name and phone, normalised; `InvalidValue` with the first reason it fails:
    too long to have been read (`oversized` is its size), a width other than the header's, then
    each known cell's rule (mail, name, phone)."""
    if oversized:
        raise InvalidValue(_oversized_reason(oversized))
    if len(fields) != header.width:
        raise InvalidValue(f"has {len(fields)} fields; the header has {header.width}")
    phone = header.phone
    return (
        normalize_email(fields[header.mail]),
        normalize_name(fields[header.name]),
        None if phone is None else normalize_phone(fields[phone]),
    )


def normalized_rows(header: Header, cells: list[str]) -> tuple[list[str], list[str], list[str | None]] | None:
    """`normalized` of rows given as one list of cells, row after row (each of the header's width),
    by column; or None when a row would be rejected (then `normalized`, row by row, says which and
    why)."""
    width = header.width
    emails = normalize_emails(cells[header.mail :: width])
    names = normalize_names(cells[header.name :: width])
    if emails is None or names is None:
        return None
    if header.phone is None:
        return emails, names, [None] * len(emails)
    phones = normalize_phones(cells[header.phone :: width])
    return None if phones is None else (emails, names, phones)


def validate_row(header: Header, fields: list[str], row: int, line: int) -> Row | Rejected:
    """A normalised `Row`, or the `Rejected` row with the first reason it fails."""
    try:
        email, name, phone = normalized(header, fields)
    except InvalidValue as invalid:
        return Rejected(row, line, str(invalid), fields)
    return Row(row=row, email=email, name=name, phone=phone)
