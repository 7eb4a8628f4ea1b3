"""Read CSV records from a byte stream, knowing the byte offset where each record ends.

The producer resumes a file from a checkpoint with an S3 range request, so it must know, after
every record, exactly how many bytes of the object it has consumed. `csv.reader` pulls one
physical line at a time from its source and never reads ahead of the record it returns, so
counting the bytes of the lines handed to it gives the offset of each record boundary, quoted
newlines included.

This is the producer's hot path, so the lines go to `csv.reader` a read block at a time: a block
of whole lines is checked (no NUL byte, valid UTF-8) and decoded with one call each, split on LF
by `io.StringIO`, and the offsets where its lines end are summed in C (`itertools.accumulate`);
a record's end is then an index into them (`csv.reader.line_num`). A block holding a bad byte is
handed out one line at a time, so that the problem is named by its offset and line, after the
records before it, exactly where a line-by-line reader would name it.

Memory is bounded while a record is read, not after: the line source refuses to hand `csv.reader`
a block once the record being read has passed `MAX_RECORD_BYTES`, nor to buffer a longer
unfinished line. A record over the limit (one huge cell, or a crafted record of many quoted fields
holding newlines) is skipped to its end by a byte scanner that follows the same quoting rules,
from its first byte, and comes out as an `oversized` record with no fields: at worst a rejected
row, never a broken file and never an unbounded buffer. So the reader holds at most one record
(up to the limit) plus one read block.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from itertools import accumulate, chain
from typing import NamedTuple, Protocol

READ_SIZE = 64 * 1024
# The longest record read into memory. A valid row's known cells are at most ~0.5 KB, so this
# leaves ample room for ignored columns while bounding what one record can cost; a longer record
# is skipped to its end and rejected (`Record.oversized`).
MAX_RECORD_BYTES = 1024 * 1024
# The longest record skipped. Skipping runs at tens of MB/s even for crafted input, and is not
# interrupted for a checkpoint, so a record this long costs a few seconds of the margin an
# invocation keeps; a longer one is not a CSV of rows, and fails the file.
MAX_SKIPPED_RECORD_BYTES = 256 * 1024 * 1024
# The most lines handed to csv.reader at once: each costs a string and an offset (about 100 bytes)
# until the block is read, which for very short lines (a crafted record of quoted newlines) would
# be many times the block's own size. A file of rows has far longer lines, and blocks of READ_SIZE.
MAX_BLOCK_LINES = 2048
BOM = b"\xef\xbb\xbf"
# No field can outgrow the record limit, so csv's own field limit (131,072 characters by
# default) must not fail a file first: one large cell is a row matter, not a file matter.
csv.field_size_limit(MAX_RECORD_BYTES)


class FileProblem(Exception):
    """The file as a whole cannot be ingested (encoding, CSV syntax, header); `str()` says why."""


class ByteStream(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class Record(NamedTuple):
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


RecordTuple = tuple[list[str], int, int, int, int, bool]
"""A `Record` as `records` yields it, with its `blank` appended: a plain tuple, since the producer
reads millions of them."""


class _Position(NamedTuple):
    offset: int
    line: int


class _Oversized(Exception):
    """Raised through `csv.reader` when the record it is reading passes `MAX_RECORD_BYTES`."""


class _Lines:
    """Decoded physical lines (ends kept) for `csv.reader`, a block at a time, and where each ends.

    After each block is handed out, `ends[k]` is the byte offset just past its k-th line (`ends[0]`
    where it starts), `block_first` the number of lines this generator handed out before it and
    `block_line` the physical lines before it; so a record `csv.reader` ends at its line number `n`
    ends at `ends[n - block_first]`, after `block_line + n - block_first` lines. The reader moves
    `record_start` at every record boundary; the buffer keeps the bytes from there, so an oversized
    record can be re-scanned from its start."""

    def __init__(self, stream: ByteStream, offset: int, line: int) -> None:
        self._stream = stream
        self._buffer = b""
        self._buffer_offset = offset  # the file offset of the buffer's first byte
        self._next = 0  # index in the buffer of the next line to hand out
        self._one_at_a_time = 0  # below this index (a block with a bad byte), lines go out one by one
        self.record_start = offset
        self.line = line  # physical lines handed out
        self.ends = [offset]
        self.block_first = 0
        self.block_line = line
        self._at_start = offset == 0
        self._eof = False

    def blocks(self) -> Iterator[list[str]]:
        """The lines, from where the last generator stopped, a list per block (for
        `itertools.chain.from_iterable`); ends with `_Oversized` when the record being read passes
        the limit, and a new one continues after `skip_record`."""
        handed = 0
        self._skip_bom()
        while True:
            start = self._next
            end = self._block_end(start)
            if end == start:
                if self._eof:
                    return
                if len(self._buffer) - (self.record_start - self._buffer_offset) > MAX_RECORD_BYTES:
                    raise _Oversized  # an unfinished line already makes the record too long
                self._fill()
                continue
            lines = self._checked_block(start, end) if start >= self._one_at_a_time else None
            if lines is None:  # a bad byte in the block: its lines one at a time, as they are checked
                self._one_at_a_time = max(self._one_at_a_time, end)
                end = self._buffer.find(b"\n", start) + 1 or end
                lines = [self._checked_line(start, end)]
            self._next = end
            self.block_first, self.block_line = handed, self.line
            handed += len(lines)
            self.line += len(lines)
            yield lines

    def _block_end(self, start: int) -> int:
        """Just past the buffer's last whole line (at the end of the stream, past its last bytes),
        or, when that is more than `MAX_BLOCK_LINES` lines, past an earlier line."""
        buffer = self._buffer
        end = buffer.rfind(b"\n", start) + 1
        if end == 0:
            return len(buffer) if self._eof else start
        while buffer.count(b"\n", start, end) > MAX_BLOCK_LINES:
            end = buffer.rfind(b"\n", start, (start + end) // 2) + 1 or buffer.find(b"\n", start) + 1
        return end

    def _checked_block(self, start: int, end: int) -> list[str] | None:
        """The block's lines, with `ends` set; None if a byte in it is NUL or not UTF-8."""
        offset = self._buffer_offset + start
        if offset - self.record_start > MAX_RECORD_BYTES:
            raise _Oversized  # the record was already too long before this block
        block = self._buffer[start:end]
        if b"\x00" in block:
            return None
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            return None
        lines = io.StringIO(text, newline="\n").readlines()  # split on LF alone, as csv.reader is fed
        sizes = map(len, lines) if block.isascii() else map(len, map(str.encode, lines))
        self.ends = list(accumulate(sizes, initial=offset))
        return lines

    def _checked_line(self, start: int, end: int) -> str:
        """One line, checked against the record limit before its bytes, as they would be read."""
        offset = self._buffer_offset + start
        if self._buffer_offset + end - self.record_start > MAX_RECORD_BYTES:
            raise _Oversized
        text = _decode(self._buffer[start:end], _Position(offset, self.line))
        self.ends = [offset, self._buffer_offset + end]
        return text

    def _fill(self) -> None:
        """Read one more block, dropping what is before the current record."""
        block = self._stream.read(READ_SIZE)
        keep = self.record_start - self._buffer_offset
        self._buffer = self._buffer[keep:] + block
        self._buffer_offset += keep
        self._next -= keep
        self._one_at_a_time = max(0, self._one_at_a_time - keep)
        self._eof = not block

    def _skip_bom(self) -> None:
        """Only the file's first bytes can be a BOM, looked for once at least three are read."""
        while self._at_start and len(self._buffer) < len(BOM) and not self._eof:
            self._fill()
        if self._at_start and self._buffer.startswith(BOM):
            self._next = len(BOM)
            self.record_start = self.ends[0] = len(BOM)
        self._at_start = False

    def past_limit(self, lines: int) -> bool:
        """Whether the record being read, up to the `lines`-th line this generator handed out, is
        over the limit (where a line-by-line reader would not have read that far)."""
        return self.ends[lines - self.block_first] - self.record_start > MAX_RECORD_BYTES

    def skip_record(self, lines_before: int) -> int:
        """Consume the current (oversized) record to its end, from its first byte, checking its
        bytes are UTF-8 text; its length in bytes. `lines_before` are the physical lines before
        it. The position moves past it."""
        scanner = _RecordScanner()
        decoder = codecs.getincrementaldecoder("utf-8")()
        length, newlines = 0, 0
        data = self._buffer[self.record_start - self._buffer_offset :]
        self._buffer, self._next, self._one_at_a_time = b"", 0, 0
        while True:
            end = scanner.feed(data)
            piece = data if end == -1 else data[:end]
            _check_text(piece, decoder, lines_before + newlines + 1)
            length += len(piece)
            newlines += piece.count(b"\n")
            if length > MAX_SKIPPED_RECORD_BYTES:
                raise FileProblem(
                    f"not a CSV of rows: the record starting on line {lines_before + 1} is over"
                    f" {MAX_SKIPPED_RECORD_BYTES} bytes"
                )
            if end != -1:
                self._buffer = data[end:]
                break
            data = self._stream.read(READ_SIZE)
            if not data:
                self._eof = True
                break
        scanner.finish(lines_before + 1)
        self.record_start = self._buffer_offset = self.record_start + length
        self.line = lines_before + newlines + (0 if end != -1 or piece.endswith(b"\n") else 1)
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
    """A line's text; `FileProblem` naming the offset and line (`position`: where the line starts)
    of a NUL byte or of bytes that are not UTF-8."""
    if (nul := raw.find(b"\x00")) != -1:
        # Valid UTF-8, but no text file holds one: a UTF-16 export or a binary file (e.g. .xlsx).
        raise FileProblem(
            f"not a text CSV file: NUL byte at byte offset {position.offset + nul} (line {position.line + 1});"
            " save the file as UTF-8 CSV"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = position.offset + error.start
        raise FileProblem(
            f"not UTF-8: byte 0x{raw[error.start]:02x} at byte offset {bad} (line {position.line + 1})"
            " is not valid UTF-8"
        ) from None


def records(stream: ByteStream, start_offset: int = 0, start_line: int = 0) -> Iterator[RecordTuple]:
    """Records of `stream`, which holds the object's bytes from `start_offset` on, as tuples.

    `start_line` is the number of physical lines before `start_offset`. Raises `FileProblem` for
    bytes that are not UTF-8 and for text that is not CSV (unbalanced quotes, NUL bytes, …).
    """
    lines = _Lines(stream, start_offset, start_line)
    first_line = start_line + 1
    while True:
        reader = csv.reader(chain.from_iterable(lines.blocks()), strict=True)
        try:
            for fields in reader:
                last = reader.line_num - lines.block_first
                end_offset = lines.ends[last]
                if end_offset - lines.record_start > MAX_RECORD_BYTES:
                    raise _Oversized  # read whole within one block, but still skipped as if unread
                end_line = lines.block_line + last
                # `Record.blank`, written out: this runs once per record.
                yield fields, first_line, end_offset, end_line, 0, not "".join(fields).strip()
                lines.record_start, first_line = end_offset, end_line + 1
            return
        except _Oversized:
            size = lines.skip_record(first_line - 1)
        except csv.Error as error:
            if not lines.past_limit(reader.line_num):
                raise FileProblem(f"not CSV: {error} (record starting on line {first_line})") from None
            size = lines.skip_record(first_line - 1)
        # The old reader holds half a record: a new one continues after it.
        yield [], first_line, lines.record_start, lines.line, size, False
        first_line = lines.line + 1


def iter_records(stream: ByteStream, start_offset: int = 0, start_line: int = 0) -> Iterator[Record]:
    """`records` as `Record`s."""
    for fields, line, end_offset, end_line, oversized, _blank in records(stream, start_offset, start_line):
        yield Record(fields, line, end_offset, end_line, oversized)
