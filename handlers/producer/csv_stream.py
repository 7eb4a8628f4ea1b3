"""Read CSV records from a byte stream, knowing the byte offset where each record ends.

The producer resumes a file from a checkpoint with an S3 range request, so it must know, after
every record, exactly how many bytes of the object it has consumed. `csv.reader` pulls one
physical line at a time from its source and never reads ahead of the record it returns, so
counting the bytes of the lines handed to it gives the offset of each record boundary, quoted
newlines included. Memory stays bounded by one read block plus one record.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

READ_SIZE = 64 * 1024
# A record longer than this is not a row of this pipeline (a row's fields are at most ~0.5 KB).
MAX_RECORD_BYTES = 1024 * 1024
BOM = b"\xef\xbb\xbf"


class FileProblem(Exception):
    """The file as a whole cannot be ingested (encoding, CSV syntax, header); `str()` says why."""


class ByteStream(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class Record:
    """One CSV record: its fields, the line it starts on, and the offset and line count just past it."""

    fields: list[str]
    line: int
    end_offset: int
    end_line: int


@dataclass
class _Position:
    offset: int
    line: int


def _text_lines(stream: ByteStream, position: _Position) -> Iterator[str]:
    """Decoded physical lines (ends kept), advancing `position` as each is handed out."""
    pending = b""
    at_start = position.offset == 0
    while True:
        block = stream.read(READ_SIZE)
        pending += block
        if at_start and (len(pending) >= len(BOM) or not block):
            at_start = False
            if pending.startswith(BOM):
                pending = pending[len(BOM) :]
                position.offset += len(BOM)
        if not block:
            break
        start = 0
        while (end := pending.find(b"\n", start)) != -1:
            yield _decode(pending[start : end + 1], position)
            start = end + 1
        pending = pending[start:]
        if len(pending) > MAX_RECORD_BYTES:
            raise FileProblem(f"not CSV: line {position.line + 1} is longer than {MAX_RECORD_BYTES} bytes")
    if pending:
        yield _decode(pending, position)


def _decode(raw: bytes, position: _Position) -> str:
    if (nul := raw.find(b"\x00")) != -1:
        # Valid UTF-8, but no text file holds one: a UTF-16 export or a binary file (e.g. .xlsx).
        raise FileProblem(
            f"not a text CSV file: NUL byte at byte offset {position.offset + nul} (line {position.line + 1});"
            " save the file as UTF-8 CSV"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = position.offset + error.start
        raise FileProblem(
            f"not UTF-8: byte 0x{raw[error.start]:02x} at byte offset {bad} (line {position.line + 1})"
            " is not valid UTF-8"
        ) from None
    position.offset += len(raw)
    position.line += 1
    return text


def iter_records(stream: ByteStream, start_offset: int = 0, start_line: int = 0) -> Iterator[Record]:
    """Records of `stream`, which holds the object's bytes from `start_offset` on.

    `start_line` is the number of physical lines before `start_offset`. Raises `FileProblem` for
    bytes that are not UTF-8 and for text that is not CSV (unbalanced quotes, NUL bytes, …).
    """
    position = _Position(start_offset, start_line)
    reader = csv.reader(_text_lines(stream, position), strict=True)
    while True:
        first_line, record_start = position.line + 1, position.offset
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise FileProblem(f"not CSV: {error} (record starting on line {first_line})") from None
        if position.offset - record_start > MAX_RECORD_BYTES:
            raise FileProblem(f"not CSV: the record starting on line {first_line} is over {MAX_RECORD_BYTES} bytes")
        yield Record(fields=fields, line=first_line, end_offset=position.offset, end_line=position.line)
