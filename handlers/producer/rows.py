"""The header and the rows: which columns mean what, and whether a row is valid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from handlers.common.chunks import Row
from handlers.common.validation import InvalidValue, normalize_email, normalize_name, normalize_phone
from handlers.producer.csv_stream import MAX_RECORD_BYTES, FileProblem

REQUIRED = ("name", "mail")
# The header is kept on the job record (for the rejects report and resuming), whose items DynamoDB
# caps at 400 KB: a wider header is not one this pipeline can hold.
MAX_HEADER_COLUMNS = 512
MAX_HEADER_CHARACTERS = 16 * 1024
# Accepted spellings of each column, after trimming and lower-casing.
ALIASES = {"name": ("name",), "mail": ("mail", "email"), "phone": ("phone",)}


@dataclass(frozen=True)
class Header:
    """The header row: its width, where each known column is, and what was ignored."""

    columns: tuple[str, ...]
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
    return Rejected(row, line, f"record is {size} bytes long; records over {MAX_RECORD_BYTES} bytes are not read", [])


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
    return Header(
        columns=tuple(fields),
        name=found["name"],
        mail=found["mail"],
        phone=found.get("phone"),
        extra=tuple(fields[i].strip() for i in range(len(fields)) if i not in known),
    )


def validate_row(header: Header, fields: list[str], row: int, line: int) -> Row | Rejected:
    """A normalised `Row`, or the `Rejected` row with the first reason it fails."""
    if len(fields) != header.width:
        return Rejected(row, line, f"has {len(fields)} fields; the header has {header.width}", fields)
    try:
        return Row(
            row=row,
            email=normalize_email(fields[header.mail]),
            name=normalize_name(fields[header.name]),
            phone=None if header.phone is None else normalize_phone(fields[header.phone]),
        )
    except InvalidValue as invalid:
        return Rejected(row, line, str(invalid), fields)
