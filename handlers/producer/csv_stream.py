"""Read CSV records from a byte stream, knowing the byte offset where each record ends.

The producer resumes a file from a checkpoint with an S3 range request, so it must know, after
every record, exactly how many bytes of the object it has consumed. `csv.reader` pulls one
physical line at a time from its source and never reads ahead of the record it returns, so
counting the bytes of the lines handed to it gives the offset of each record boundary, quoted
newlines included.

Memory is bounded while a record is read, not after: the line source refuses to hand `csv.reader`
more than `MAX_RECORD_BYTES` of one record. A longer record (one huge cell, or a crafted record of
many quoted fields holding newlines) is then skipped to its end by a byte scanner that follows
the same quoting rules, and comes out as an `oversized` record with no fields: at worst a rejected
row, never a broken file and never an unbounded buffer. So the reader holds at most one record
(up to the limit) plus one read block.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

READ_SIZE = 64 * 1024
# The longest record read into memory. A valid row's known cells are at most ~0.5 KB, so this
# leaves ample room for ignored columns while bounding what one record can cost; a longer record
# is skipped to its end and rejected (`Record.oversized`).
MAX_RECORD_BYTES = 1024 * 1024
# The longest record skipped. Skipping runs at tens of MB/s even for crafted input, and is not
# interrupted for a checkpoint, so a record this long costs a few seconds of the margin an
# invocation keeps; a longer one is not a CSV of rows, and fails the file.
MAX_SKIPPED_RECORD_BYTES = 256 * 1024 * 1024
BOM = b"\xef\xbb\xbf"
# No field can outgrow the record limit, so csv's own field limit (131,072 characters by
# default) must not fail a file first: one large cell is a row matter, not a file matter.
csv.field_size_limit(MAX_RECORD_BYTES)


class FileProblem(Exception):
    """The file as a whole cannot be ingested (encoding, CSV syntax, header); `str()` says why."""


class ByteStream(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class Record:
    """One CSV record: its fields, the line it starts on, and the offset and line count just past it.

    `oversized` is the byte length of a record longer than `MAX_RECORD_BYTES`, which was skipped
    unread (its `fields` are empty); 0 for every other record.
    """

    fields: list[str]
    line: int
    end_offset: int
    end_line: int
    oversized: int = 0

    @property
    def blank(self) -> bool:
        """An empty line, or one whose cells are all empty (`,,`): not a row."""
        # Whitespace-only cells joined are whitespace-only: one strip in C instead of one per cell.
        return not self.oversized and not "".join(self.fields).strip()


@dataclass
class _Position:
    offset: int
    line: int


class _Oversized(Exception):
    """Raised through `csv.reader` when the record it is reading passes `MAX_RECORD_BYTES`."""


class _Lines:
    """Decoded physical lines (ends kept) for `csv.reader`, advancing `position` as each is handed
    out. The buffer keeps the current record's bytes from its first line, so an oversized record
    can be re-scanned from its start."""

    def __init__(self, stream: ByteStream, position: _Position) -> None:
        self._stream = stream
        self.position = position
        self._buffer = b""
        self._next = 0  # index in the buffer of the next line to hand out
        self._record = 0  # index in the buffer where the current record starts
        self._record_offset, self._record_line = position.offset, position.line
        self._at_start = position.offset == 0
        self._eof = False

    def start_record(self) -> int:
        """Mark the next line as the start of a record; the number of lines before it."""
        self._record = self._next
        self._record_offset = self.position.offset
        self._record_line = line = self.position.line
        return line

    def lines(self) -> Iterator[str]:
        """The lines, from where the last generator stopped. A generator, since this is the
        producer's hot path (one step per physical line); it ends with `_Oversized` when a record
        passes the limit, and a new one continues after `skip_record`."""
        position = self.position
        while True:
            buffer, next_line = self._buffer, self._next
            while (end := buffer.find(b"\n", next_line) + 1) != 0:
                if end - self._record > MAX_RECORD_BYTES:
                    raise _Oversized
                raw = buffer[next_line:end]
                self._next = next_line = end
                if b"\x00" in raw or not raw.isascii():
                    yield _decode(raw, position)  # checks NUL bytes and UTF-8, naming the offset
                else:
                    position.offset += len(raw)
                    position.line += 1
                    yield raw.decode("ascii")
            if len(buffer) - self._record > MAX_RECORD_BYTES:
                raise _Oversized
            if not self._fill():
                break
        if self._next < len(self._buffer):  # a last line with no newline
            raw, self._next = self._buffer[self._next :], len(self._buffer)
            yield _decode(raw, position)

    def _fill(self) -> bool:
        """Read one more block, dropping what is before the current record; False at the end."""
        if self._eof:
            return False
        block = self._stream.read(READ_SIZE)
        keep = min(self._record, self._next)
        self._buffer = self._buffer[keep:] + block
        self._record -= keep
        self._next -= keep
        if not block:
            self._eof = True
        if self._at_start and (len(self._buffer) >= len(BOM) or self._eof):
            self._at_start = False
            # Only the file's first bytes can be a BOM: after short reads, a first line under three
            # bytes may already be handed out, and the buffer then starts with the next record.
            if self.position.offset == 0 and self._buffer.startswith(BOM):
                self._next += len(BOM)
                self._record = self._next
                self.position.offset += len(BOM)
                self._record_offset += len(BOM)
        return bool(block)

    def skip_record(self) -> int:
        """Consume the current (oversized) record to its end, checking its bytes are UTF-8 text;
        its length in bytes. The position moves past it."""
        scanner = _RecordScanner()
        decoder = codecs.getincrementaldecoder("utf-8")()
        start, length, newlines = _Position(self._record_offset, self._record_line), 0, 0
        data = self._buffer[self._record :]
        self._buffer, self._next, self._record = b"", 0, 0
        while True:
            end = scanner.feed(data)
            piece = data if end == -1 else data[:end]
            _check_text(piece, decoder, start.line + newlines + 1)
            length += len(piece)
            newlines += piece.count(b"\n")
            if length > MAX_SKIPPED_RECORD_BYTES:
                raise FileProblem(
                    f"not a CSV of rows: the record starting on line {start.line + 1} is over"
                    f" {MAX_SKIPPED_RECORD_BYTES} bytes"
                )
            if end != -1:
                self._buffer = data[end:]
                break
            data = self._stream.read(READ_SIZE)
            if not data:
                self._eof = True
                break
        scanner.finish(start.line + 1)
        self.position.offset = start.offset + length
        self.position.line = start.line + newlines + (0 if end != -1 or piece.endswith(b"\n") else 1)
        return length


def _check_text(piece: bytes, decoder: codecs.IncrementalDecoder, line: int) -> None:
    if b"\x00" in piece:
        raise FileProblem(f"not a text CSV file: NUL byte in the record starting on line {line}")
    try:
        decoder.decode(piece)
    except UnicodeDecodeError:
        raise FileProblem(f"not UTF-8: the record starting on line {line} holds bytes that are not UTF-8") from None


# States of `_RecordScanner`, after `csv.reader`'s (excel dialect, strict).
_START_FIELD, _UNQUOTED, _QUOTED, _QUOTE_SEEN, _CR_AFTER_QUOTE = range(5)
# Outside quotes only a newline (the record's end) or a quote opening the next field matters: a
# quote inside an unquoted field is an ordinary character.
_UNQUOTED_STOP = re.compile(rb'\n|,"')
# Inside quotes: ordinary bytes and escaped quotes (`""`), up to the next lone quote.
_QUOTED_RUN = re.compile(rb'[^"]*+(?:""[^"]*+)*+')
# At a field's start: a run of whole fields (quoted, unquoted or empty), each closed by a comma.
_FIELDS_RUN = re.compile(rb'(?:"[^"]*(?:""[^"]*)*",|[^",\n][^,\n]*,|,)*+')
# The most one regular-expression call looks at, so that its own bookkeeping stays small.
_WINDOW = 64 * 1024


class _RecordScanner:
    """Finds where a record ends without keeping it: the quoting rules of `csv.reader` with the
    excel dialect and `strict=True` (a quote opens a quoted field only at the start of a field;
    `""` inside one is a quote; a newline outside quotes ends the record). Runs of ordinary bytes
    are skipped by regular expressions, so the cost per byte stays close to C's."""

    def __init__(self) -> None:
        self._state = _START_FIELD

    def feed(self, data: bytes) -> int:
        """Scan `data`; the index just past the record's end, or -1 if it goes on."""
        i, state, size = 0, self._state, len(data)
        while i < size:
            if state == _START_FIELD:
                i = _FIELDS_RUN.match(data, i, min(size, i + _WINDOW)).end()  # type: ignore[union-attr]
                if i < size:
                    state, i = (_QUOTED, i + 1) if data[i] == 0x22 else (_UNQUOTED, i)
            elif state == _UNQUOTED:
                stop = _UNQUOTED_STOP.search(data, i)
                if stop is None:
                    # A comma at the very end may open a quoted field in the next block.
                    state, i = (_START_FIELD if data.endswith(b",") else _UNQUOTED), size
                elif stop.group() == b"\n":
                    return self._end(stop.end())
                else:
                    state, i = _QUOTED, stop.end()
            elif state == _QUOTED:
                i = _QUOTED_RUN.match(data, i, min(size, i + _WINDOW)).end()  # type: ignore[union-attr]
                if i < size and data[i] == 0x22:
                    state, i = _QUOTE_SEEN, i + 1
            elif state == _QUOTE_SEEN:
                byte, i = data[i], i + 1
                if byte == 0x0A:
                    return self._end(i)
                if byte not in b'",\r':
                    raise FileProblem("not CSV: ',' expected after '\"' (in an oversized record)")
                state = {0x22: _QUOTED, 0x2C: _START_FIELD, 0x0D: _CR_AFTER_QUOTE}[byte]
            elif data[i] == 0x0A:  # _CR_AFTER_QUOTE
                return self._end(i + 1)
            elif data[i] == 0x0D:  # csv.reader eats any run of CRs before the LF (`"…"\r\r\n`)
                i += 1
            else:
                raise FileProblem("not CSV: new-line character seen in unquoted field (in an oversized record)")
        self._state = state
        return -1

    def _end(self, index: int) -> int:
        self._state = _START_FIELD
        return index

    def finish(self, line: int) -> None:
        """The data ended: fine unless inside a quoted field."""
        if self._state == _QUOTED:
            raise FileProblem(f"not CSV: unexpected end of data (record starting on line {line})")


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
    lines = _Lines(stream, _Position(start_offset, start_line))
    position = lines.position
    reader = csv.reader(lines.lines(), strict=True)
    while True:
        first_line = lines.start_record() + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except _Oversized:
            size = lines.skip_record()
            reader = csv.reader(lines.lines(), strict=True)  # the old one holds half a record
            yield Record(fields=[], line=first_line, end_offset=position.offset, end_line=position.line, oversized=size)
            continue
        except csv.Error as error:
            raise FileProblem(f"not CSV: {error} (record starting on line {first_line})") from None
        yield Record(fields=fields, line=first_line, end_offset=position.offset, end_line=position.line)
