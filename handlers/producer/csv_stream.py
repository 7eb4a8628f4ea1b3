"""Read CSV records from a byte stream, knowing the byte offset where each record ends.

The producer resumes a file from a checkpoint, so it must know, after every record, exactly how
many bytes of its stream it has consumed: the file's UTF-8 text, which for a plain UTF-8 file is the
object's bytes (resumed with an S3 range request), and otherwise what decompression and transcoding
make of them (`sources`). `csv.reader` pulls one physical line at a time from its source and never
reads ahead of the record it returns, so counting the bytes of the lines handed to it gives the
offset of each record boundary, quoted newlines included.

Fields are separated by the file's delimiter, one of comma, semicolon, tab and pipe
(`schema.DELIMITERS`; the caller knows which, `dialect`); the quote is always `"`, as RFC 4180's.
Everything that splits a line or skips a record follows the delimiter: `csv.reader`'s `delimiter`,
the one-line records' split, their blank test (a line of spaces and delimiters only), and the
patterns of the byte scanner, made once per delimiter (`_syntax`). A comma file is read exactly as
before the other three were taken, at the same speed.

A line ends as in a file opened with `newline=''`, as `csv.reader` must be fed
(https://docs.python.org/3/library/csv.html#csv.reader): at an LF, a CRLF or a lone CR (files from
old Mac tools, and some exports), its end kept
(https://docs.python.org/3/library/io.html#io.TextIOWrapper). So a run of CRs is a run of empty
lines, each a blank record, as `csv.reader` reads them; and a CR last in a read is not a line end
until the next byte is known not to be an LF.

This is the producer's hot path, so the lines go to `csv.reader` a read block at a time: a block
of whole lines is checked (no NUL byte, valid UTF-8) and decoded with one call each, split at its
line ends by `io.StringIO`, and the offsets where its lines end are summed in C (`itertools.accumulate`);
a record's end is then an index into them (`csv.reader.line_num`). A block holding a bad byte is
handed out one line at a time, so that the problem is named by its offset and line, after the
records before it, exactly where a line-by-line reader would name it. A block that starts at a
record boundary and holds no quote (nor a lone CR) needs no `csv.reader` at all: each
of its lines is one record, its fields the line split at the delimiter; `blocks` gives such a
block whole (`LineRecords`), for the producer to check and pack at once.

A file that is not UTF-8 text fails with a message that says what to do, and never shows a byte's
character (it is part of a cell, personal data): a byte that is a character in cp1252 (Windows-1252:
every byte from 0x80 but five) is most likely from a Windows export, and the message names the
setting, `csv-ingest:schema.format.encoding`, and the value, cp1252 (or latin-1); a file whose
first two bytes say what it is fails on them, and is told what reads it: a UTF-16 byte order mark
(its ASCII characters hold NUL bytes, and its first byte is never UTF-8) to set utf-16, gzip's
magic (a `.gz` file uploaded under a `.csv` key: its second byte is never UTF-8) to upload it under
a `.gz` key; any other NUL byte or bad byte says to save the file as UTF-8, or to set the file's
encoding.

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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from itertools import accumulate, chain, islice, repeat
from operator import add, sub
from typing import NamedTuple, Protocol

from handlers.common.schema import DELIMITERS

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
# A UTF-16 file starts with one of these, which says its byte order
# (https://docs.python.org/3/library/codecs.html#encodings-and-unicode): read as UTF-8, such a file
# fails on its first bytes, and its message says the setting that reads it.
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# Every gzip member starts with these two bytes (RFC 1952 §2.3.1, ID1 ID2): read as text, a gzip
# file fails on them (0x8b is never UTF-8; a NUL follows in most headers), and its message says so.
GZIP_MAGIC = b"\x1f\x8b"
ENCODING_SETTING = "csv-ingest:schema.format.encoding"
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


# A line end (module docstring): searched from a line's start, the first one ends it.
_LINE_END = re.compile(rb"\r\n?|\n")


def _line_count(buffer: bytes, start: int, end: int) -> int:
    """The line ends (LF, CRLF, lone CR) between `start` and `end`, none of them split."""
    lines = buffer.count(b"\n", start, end)
    if (crs := buffer.count(b"\r", start, end)) == 0:
        return lines
    return lines + crs - buffer.count(b"\r\n", start, end)


class _Lines:
    """Decoded physical lines (ends kept) for `csv.reader`, a block at a time, and where each ends.

    After each block is handed out, `ends[k]` is the byte offset just past its k-th line (`ends[0]`
    where it starts), `block_first` the number of lines this generator handed out before it and
    `block_line` the physical lines before it; so a record `csv.reader` ends at its line number `n`
    ends at `ends[n - block_first]`, after `block_line + n - block_first` lines. The reader moves
    `record_start` at every record boundary; the buffer keeps the bytes from there, so an oversized
    record can be re-scanned from its start."""

    def __init__(self, stream: ByteStream, offset: int, line: int, delimiter: str) -> None:
        self._stream = stream
        self.delimiter = delimiter
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
        self._known: str | None = None  # what the file's first bytes say it is (`_known_problem`)
        self._eof = False

    def next_block(self) -> LineRecords | list[str] | None:
        """The next block: `LineRecords`, or lines for `csv.reader` (with `ends` and `block_line`
        set); None at the end. Raises `_Oversized` when the record being read passes the limit
        (`skip_record` then)."""
        self._skip_bom()
        while True:
            start = self._next
            end = self._block_end(start)
            if end == start:
                if self._eof:
                    return None
                if len(self._buffer) - (self.record_start - self._buffer_offset) > MAX_RECORD_BYTES:
                    raise _Oversized  # an unfinished line already makes the record too long
                self._fill()
                continue
            block = self._checked_block(start, end) if start >= self._one_at_a_time else None
            if block is None:  # a bad byte in the block: its lines one at a time, as they are checked
                self._one_at_a_time = max(self._one_at_a_time, end)
                first = _LINE_END.search(self._buffer, start, end)
                end = first.end() if first else end
                block = [self._checked_line(start, end)]
            self._next = end
            self.block_line = self.line
            self.line += len(block.contents if isinstance(block, LineRecords) else block)
            return block

    def feed(self, first: list[str]) -> Iterator[list[str]]:
        """Lines for one `csv.reader` (for `itertools.chain.from_iterable`): the block `first`,
        then the next ones as long as the reader is inside a record; it ends where a block starts
        at a record boundary (the reader then ends too)."""
        self.block_first, handed = 0, len(first)
        yield first
        while self.record_start < self._buffer_offset + self._next and (lines := self.next_block()) is not None:
            assert not isinstance(lines, LineRecords), "a block inside a record is never LineRecords"
            self.block_first, handed = handed, handed + len(lines)
            yield lines

    def _block_end(self, start: int) -> int:
        """Just past the buffer's last whole line (at the end of the stream, past its last bytes),
        or, when that is more than `MAX_BLOCK_LINES` lines, past an earlier line."""
        buffer = self._buffer
        end = self._last_line_end(start, len(buffer))
        if end == start:
            return len(buffer) if self._eof else start
        while _line_count(buffer, start, end) > MAX_BLOCK_LINES:
            end = self._last_line_end(start, (start + end) // 2)
            if end == start:
                end = _LINE_END.search(buffer, start).end()  # type: ignore[union-attr]
        return end

    def _last_line_end(self, start: int, stop: int) -> int:
        """Just past the last line end in the buffer between `start` and `stop` (`start` if none).
        A CR is one only when the byte after it is known and not an LF: otherwise it is the first
        half of a CRLF that ends after `stop`, or may be (the buffer's last byte, more to read)."""
        buffer = self._buffer
        after_lf = buffer.rfind(b"\n", start, stop) + 1 or start
        cr = buffer.rfind(b"\r", after_lf, stop)  # only a CR after the last LF can end a later line
        while cr != -1:
            after = buffer[cr + 1 : cr + 2]
            if after != b"\n" and (after or self._eof):
                return cr + 1
            cr = buffer.rfind(b"\r", after_lf, cr)
        return after_lf

    def _checked_block(self, start: int, end: int) -> LineRecords | list[str] | None:
        """The block as `LineRecords` if it is such, else its lines with `ends` set; None if a byte
        in it is NUL or not UTF-8."""
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
        if (
            offset == self.record_start
            and (records := _line_records(text, block, offset, self.line, self.delimiter)) is not None
        ):
            return records
        # Split at LF, CRLF and a lone CR, as a file opened with newline='' is (module docstring).
        lines = io.StringIO(text, newline="").readlines()
        sizes = map(len, lines) if block.isascii() else map(len, map(str.encode, lines))
        self.ends = list(accumulate(sizes, initial=offset))
        return lines

    def _checked_line(self, start: int, end: int) -> str:
        """One line, checked against the record limit before its bytes, as they would be read."""
        offset = self._buffer_offset + start
        if self._buffer_offset + end - self.record_start > MAX_RECORD_BYTES:
            raise _Oversized
        text = _decode(self._buffer[start:end], _Position(offset, self.line), known=self._known)
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
        """Only the file's first bytes can be a BOM, looked for once at least three are read: a
        UTF-8 BOM is skipped; a UTF-16 one, or gzip's magic, remembered for the message the file then
        fails with."""
        if not self._at_start:
            return
        while len(self._buffer) < len(BOM) and not self._eof:
            self._fill()
        if self._buffer.startswith(BOM):
            self._next = len(BOM)
            self.record_start = self.ends[0] = len(BOM)
        self._known = _known_problem(self._buffer)
        self._at_start = False

    def past_limit(self, lines: int) -> bool:
        """Whether the record being read, up to the `lines`-th line this generator handed out, is
        over the limit (where a line-by-line reader would not have read that far)."""
        return self.ends[lines - self.block_first] - self.record_start > MAX_RECORD_BYTES

    def skip_record(self, lines_before: int) -> int:
        """Consume the current (oversized) record to its end, from its first byte, checking its
        bytes are UTF-8 text; its length in bytes. `lines_before` are the physical lines before
        it. The position moves past it."""
        scanner = _RecordScanner(lines_before + 1, _syntax(self.delimiter))
        decoder = codecs.getincrementaldecoder("utf-8")()
        length, line_ends, piece = 0, 0, b""
        data = self._buffer[self.record_start - self._buffer_offset :]
        self._buffer, self._next, self._one_at_a_time = b"", 0, 0
        while True:
            end = scanner.feed(data)
            split_crlf = piece.endswith(b"\r") and data.startswith(b"\n")  # counted with its CR
            piece = data if end == -1 else data[:end]
            _check_text(piece, decoder, lines_before + 1, known=self._known)
            length += len(piece)
            line_ends += _line_count(piece, 0, len(piece)) - split_crlf
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
        scanner.finish()
        self.record_start = self._buffer_offset = self.record_start + length
        # A record ends at a line end, or with the data (its last line then has none).
        self.line = lines_before + line_ends + (0 if end != -1 or piece.endswith((b"\n", b"\r")) else 1)
        return length


def _check_text(piece: bytes, decoder: codecs.IncrementalDecoder, line: int, *, known: str | None) -> None:
    """`FileProblem` if `piece`, of the (oversized) record starting on `line`, holds a NUL byte or
    bytes that are not UTF-8 (with what came before it through `decoder`)."""
    if b"\x00" in piece:
        raise _not_text(f"NUL byte in the record starting on line {line}", known=known)
    try:
        decoder.decode(piece)
    except UnicodeDecodeError as error:
        # The decoder's input (`error.object`) is what it kept of the previous piece, then this one.
        byte = error.object[error.start]
        raise _not_utf8(
            f"not UTF-8: the record starting on line {line} holds bytes that are not UTF-8 (the first 0x{byte:02x})",
            byte,
            known=known,
        ) from None


def _known_problem(head: bytes) -> str | None:
    """The problem of a file whose first bytes say what it is, when it fails as not UTF-8 text
    (`known` below): a UTF-16 file's, or gzip data's; None for any other file."""
    if head.startswith(UTF16_BOMS):
        return _UTF16_PROBLEM
    if head.startswith(GZIP_MAGIC):
        return GZIP_PROBLEM
    return None


def _not_text(where: str, *, known: str | None) -> FileProblem:
    """The problem of a NUL byte (`where`: where it is): valid UTF-8, but no text file holds one; a
    UTF-16 export (most of its characters' bytes are NULs) or a binary file (e.g. .xlsx). `known`:
    what the file's first bytes say it is (`_known_problem`), the problem then."""
    if known is not None:
        return FileProblem(known)
    return FileProblem(f"not a text CSV file: {where}; {_OTHER_ENCODING}")


def _not_utf8(problem: str, byte: int, *, known: str | None) -> FileProblem:
    """`problem` (bytes that are not UTF-8, `byte` the first) with the encoding to set: cp1252 when
    the byte is one of its characters, as in most Windows exports; `known` as `_not_text`'s. The
    character is never shown: it is part of a cell."""
    if known is not None:
        return FileProblem(known)
    return FileProblem(f"{problem}; {_CP1252 if _is_cp1252(byte) else _OTHER_ENCODING}")


def _is_cp1252(byte: int) -> bool:
    """Whether `byte` is a character in cp1252: all of 0x80–0xFF but the five it leaves undefined
    (Python's cp1252 codec fails on those: https://docs.python.org/3/library/codecs.html#standard-encodings)."""
    try:
        bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return False
    return True


_UTF16_PROBLEM = (
    f"not a text CSV file in UTF-8: it starts with a UTF-16 byte order mark; set {ENCODING_SETTING} to utf-16"
)
# Only a key ending .gz is decompressed (`dialect`), so the object's key is what fixes it.
GZIP_PROBLEM = (
    "gzip data, not text: the file is gzip-compressed; upload it under a key ending .gz (.csv.gz) so that it is"
    " decompressed"
)
_CP1252 = (
    "it is a character in cp1252 (Windows-1252), the encoding of most Windows exports: if the file is one,"
    f" set {ENCODING_SETTING} to cp1252 (or latin-1)"
)
_OTHER_ENCODING = f"save the file as UTF-8 CSV, or set {ENCODING_SETTING} to the file's encoding"


# States of `_RecordScanner`, after `csv.reader`'s (excel dialect, strict), the last a CR ending
# a record, last in the data scanned so far: an LF first in the next data belongs to it.
_START_FIELD, _UNQUOTED, _QUOTED, _QUOTE_SEEN, _CR_LAST = range(5)
# Inside quotes: ordinary bytes and escaped quotes (`""`), up to the next lone quote.
_QUOTED_RUN = re.compile(rb'[^"]*+(?:""[^"]*+)*+')
# The most one regular-expression call looks at, so that its own bookkeeping stays small.
_WINDOW = 64 * 1024
# The rules `csv.reader` (excel dialect, strict) reports a file of rows breaking; any other error
# (none is known to reach here) is told by the generic rule, never in words written for Python
# programmers.
_QUOTE_UNCLOSED = "unexpected end of data"
_ANY_CSV_RULE = "quotes not as RFC 4180 places them"


# The patterns that depend on the delimiter, written with `D` for it (`_syntax` makes them).
# At a field's start: a run of whole fields (quoted, unquoted or empty), each closed by a delimiter.
_FIELDS_RUN = rb'(?:"[^"]*(?:""[^"]*)*"D|[^"D\r\n][^D\r\n]*D|D)*+'
# Outside quotes only a line end (the record's end) or a quote opening the next field matters: a
# quote inside an unquoted field is an ordinary character.
_UNQUOTED_STOP = rb'[\r\n]|D"'
# A line end, a line of spaces and delimiters only (or several), a line end: a superset of the blank
# records after a block's first line and before its last (a literal first, so the search is quick).
_BLANK_INNER_LINE = r"\n[\sD]*\n"


class _Syntax(NamedTuple):
    """What reading a file depends on in its delimiter (the quote is always `"`), made once per
    delimiter (`_syntax`)."""

    byte: int
    """The delimiter's byte (each of the four is one ASCII byte)."""
    fields_run: re.Pattern[bytes]
    unquoted_stop: re.Pattern[bytes]
    blank_inner_line: re.Pattern[str]
    quote_then_text: str
    """The rule a closing quote followed by text breaks, as `csv.reader` words it."""
    quote_then_text_rule: str
    """The same rule as a message says it (a tab by name)."""


@cache
def _syntax(delimiter: str) -> _Syntax:
    assert delimiter in DELIMITERS.values(), "the caller reads a file in one of the four delimiters"
    escaped = re.escape(delimiter)  # the same in a character class and out of one
    shown = "a tab" if delimiter == "\t" else f"'{delimiter}'"
    return _Syntax(
        byte=ord(delimiter),
        fields_run=re.compile(_FIELDS_RUN.replace(b"D", escaped.encode())),
        unquoted_stop=re.compile(_UNQUOTED_STOP.replace(b"D", escaped.encode())),
        blank_inner_line=re.compile(_BLANK_INNER_LINE.replace("D", escaped)),
        quote_then_text=f"'{delimiter}' expected after '\"'",
        quote_then_text_rule=f"{shown} expected after '\"'",
    )


def _not_csv(error: str, line: int, syntax: _Syntax) -> FileProblem:
    """The file problem of a record, starting on `line`, that breaks a rule (`error`: `csv.Error`'s
    text), in a message's words."""
    if error == syntax.quote_then_text:
        rule = syntax.quote_then_text_rule
    else:
        rule = error if error == _QUOTE_UNCLOSED else _ANY_CSV_RULE
    return FileProblem(f"not CSV: {rule} (record starting on line {line})")


class _RecordScanner:
    """Finds where a record ends without keeping it: the quoting rules of `csv.reader` with the
    excel dialect and `strict=True` (a quote opens a quoted field only at the start of a field;
    `""` inside one is a quote; a line end outside quotes, LF, CRLF or a lone CR, ends the record),
    fed lines as a file opened with newline='' gives them, fields separated by `syntax`'s delimiter.
    Runs of ordinary bytes are skipped by regular expressions, so the cost per byte stays close to
    C's. `line` is where the record starts, for the reasons it gives."""

    def __init__(self, line: int, syntax: _Syntax) -> None:
        self._state = _START_FIELD
        self._line = line
        self._syntax = syntax

    def feed(self, data: bytes) -> int:
        """Scan `data`; the index just past the record's end, or -1 if it goes on."""
        i, state, size, syntax = 0, self._state, len(data), self._syntax
        if state == _CR_LAST and size:
            return self._end(1 if data[0] == 0x0A else 0)
        while i < size:
            if state == _START_FIELD:
                i = syntax.fields_run.match(data, i, min(size, i + _WINDOW)).end()  # type: ignore[union-attr]
                if i < size:
                    state, i = (_QUOTED, i + 1) if data[i] == 0x22 else (_UNQUOTED, i)
            elif state == _UNQUOTED:
                stop = syntax.unquoted_stop.search(data, i)
                if stop is None:
                    # A delimiter at the very end may open a quoted field in the next block.
                    state, i = (_START_FIELD if data[-1] == syntax.byte else _UNQUOTED), size
                elif stop.group()[0] != syntax.byte:
                    return self._line_end(data, stop.start())
                else:
                    state, i = _QUOTED, stop.end()
            elif state == _QUOTED:
                i = _QUOTED_RUN.match(data, i, min(size, i + _WINDOW)).end()  # type: ignore[union-attr]
                if i < size and data[i] == 0x22:
                    state, i = _QUOTE_SEEN, i + 1
            else:  # _QUOTE_SEEN
                byte = data[i]
                if byte in b"\r\n":
                    return self._line_end(data, i)
                if byte != 0x22 and byte != syntax.byte:
                    raise _not_csv(syntax.quote_then_text, self._line, syntax)
                state, i = (_QUOTED if byte == 0x22 else _START_FIELD), i + 1
        self._state = state
        return -1

    def _line_end(self, data: bytes, at: int) -> int:
        """The record ends at the line end starting at `at`: past it, or -1 when a CR is last."""
        if data[at] == 0x0A:
            return self._end(at + 1)
        if at + 1 == len(data):
            self._state = _CR_LAST
            return -1
        return self._end(at + 2 if data[at + 1] == 0x0A else at + 1)

    def _end(self, index: int) -> int:
        self._state = _START_FIELD
        return index

    def finish(self) -> None:
        """The data ended: fine unless inside a quoted field."""
        if self._state == _QUOTED:
            raise _not_csv(_QUOTE_UNCLOSED, self._line, self._syntax)


def _decode(raw: bytes, position: _Position, *, known: str | None) -> str:
    """A line's text; `FileProblem` naming the offset and line (`position`: where the line starts)
    of a NUL byte or of bytes that are not UTF-8 (`known`: as `_not_text`'s)."""
    if (nul := raw.find(b"\x00")) != -1:
        where = f"NUL byte at byte offset {position.offset + nul} (line {position.line + 1})"
        raise _not_text(where, known=known)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        bad, byte = position.offset + error.start, raw[error.start]
        problem = f"not UTF-8: byte 0x{byte:02x} at byte offset {bad} (line {position.line + 1}) is not valid UTF-8"
        raise _not_utf8(problem, byte, known=known) from None


@dataclass(frozen=True)
class LineRecords:
    """The records of one block read whole, one per line, none over the limit, no quote in them and
    a CR only before an LF: each line is one record, its fields its text split at the delimiter (what
    `csv.reader` reads from such a line, and it cannot fail on one). The producer handles such a
    block at once (almost every block of a file of rows is one), any other record by itself."""

    text: str
    contents: list[str]
    """Each line without its LF."""
    ends: list[int]
    """The offset where the block starts, then where each line ends."""
    lines_before: int
    delimiter: str
    """The file's delimiter: `,`, `;`, a tab or `|`."""

    @cached_property
    def fields(self) -> list[list[str]]:
        fields = list(map(str.split, self._cells_text, repeat(self.delimiter)))
        if "" in self._cells_text:  # an empty line: csv.reader reads no field at all
            fields = [cells if content else [] for cells, content in zip(fields, self._cells_text, strict=True)]
        return fields

    def cells(self, width: int) -> list[str] | None:
        """Every record's fields in one list, record after record, if each has `width` of them
        (then field k of record r is at `r * width + k`); else None. No list per record."""
        if "" in self._cells_text or not self.contents:
            return None
        delimiter = self.delimiter
        delimiters = list(map(str.count, self._cells_text, repeat(delimiter)))
        if min(delimiters) != width - 1 or max(delimiters) != width - 1:
            return None
        return delimiter.join(self._cells_text).split(delimiter)

    @cached_property
    def _cells_text(self) -> list[str]:
        """Each line without its line end: a CR is only ever a line's last character, before its
        LF, and csv.reader drops it with the LF."""
        if "\r" not in self.text:
            return self.contents
        return [content.removesuffix("\r") for content in self.contents]

    def end_lines(self) -> range:
        """The line count just past each record."""
        return range(self.lines_before + 1, self.lines_before + len(self.contents) + 1)

    @cached_property
    def maybe_blank(self) -> bool:
        """Whether a line could be a blank record, one of spaces and delimiters only: a pattern
        finds any between two others, the first and last are looked at."""
        delimiter = self.delimiter
        if any(not edge.replace(delimiter, "").strip() for edge in (self.contents[0], self.contents[-1])):
            return True
        return _syntax(delimiter).blank_inner_line.search(self.text) is not None

    def blank(self) -> Iterable[bool]:
        """Whether each record is `Record.blank`."""
        if not self.maybe_blank:
            return repeat(False, len(self.contents))
        return [not "".join(fields).strip() for fields in self.fields]

    def records(self) -> Iterator[RecordTuple]:
        lines = self.end_lines()
        return zip(self.fields, lines, islice(self.ends, 1, None), lines, repeat(0), self.blank())

    def after(self, count: int) -> LineRecords:
        """The records after the first `count`."""
        text = self.text[sum(map(len, self.contents[:count])) + count :]
        return LineRecords(text, self.contents[count:], self.ends[count:], self.lines_before + count, self.delimiter)


def _line_records(text: str, block: bytes, offset: int, lines_before: int, delimiter: str) -> LineRecords | None:
    """`block` (decoded: `text`), starting at a record boundary, as `LineRecords`, if it is such."""
    if '"' in text or ("\r" in text and text.count("\r") != text.count("\r\n")):
        return None
    contents = text.split("\n")
    if text.endswith("\n"):
        contents.pop()
    sizes = map(len, contents) if block.isascii() else map(len, map(str.encode, contents))
    ends = list(accumulate(map(add, sizes, repeat(1)), initial=offset))  # each line and its LF
    if not text.endswith("\n"):
        ends[-1] -= 1  # the file's last line, with no LF
    if len(block) > MAX_RECORD_BYTES and max(map(sub, ends[1:], ends)) > MAX_RECORD_BYTES:
        return None
    return LineRecords(text, contents, ends, lines_before, delimiter)


def blocks(
    stream: ByteStream, start_offset: int = 0, start_line: int = 0, delimiter: str = ","
) -> Iterator[LineRecords | RecordTuple]:
    """Records of `stream`, which holds the file's text in UTF-8 from `start_offset` on: whole
    blocks of `LineRecords`, and every other record by itself as a tuple.

    `start_line` is the number of physical lines before `start_offset`; `delimiter` one of `,`,
    `;`, a tab, `|`. Raises `FileProblem` for bytes that are not UTF-8 and for text that is not CSV
    (unbalanced quotes, NUL bytes, …).
    """
    _syntax(delimiter)  # checks the delimiter, and makes its patterns before the first record
    lines = _Lines(stream, start_offset, start_line, delimiter)
    while True:
        try:
            block = lines.next_block()
        except _Oversized:
            yield _skipped(lines, lines.line + 1)
            continue
        if block is None:
            return
        if isinstance(block, LineRecords):
            yield block
            lines.record_start = block.ends[-1]
        else:
            yield from _read_records(lines, block)


def _read_records(lines: _Lines, block: list[str]) -> Iterator[RecordTuple]:
    """The records `csv.reader` reads from `block` on, up to a record boundary at a block's start."""
    first_line = lines.block_line + 1
    reader = csv.reader(chain.from_iterable(lines.feed(block)), delimiter=lines.delimiter, strict=True)
    try:
        for fields in reader:
            last = reader.line_num - lines.block_first
            end_offset = lines.ends[last]
            if end_offset - lines.record_start > MAX_RECORD_BYTES:
                raise _Oversized  # read whole within one block, but still skipped as if unread
            end_line = lines.block_line + last
            yield fields, first_line, end_offset, end_line, 0, not "".join(fields).strip()  # `Record.blank`
            lines.record_start, first_line = end_offset, end_line + 1
    except _Oversized:
        yield _skipped(lines, first_line)
    except csv.Error as error:
        if not lines.past_limit(reader.line_num):
            raise _not_csv(str(error), first_line, _syntax(lines.delimiter)) from None
        yield _skipped(lines, first_line)


def _skipped(lines: _Lines, first_line: int) -> RecordTuple:
    """The oversized record starting on `first_line`, skipped to its end."""
    size = lines.skip_record(first_line - 1)
    return [], first_line, lines.record_start, lines.line, size, False


def records_of(block: LineRecords | RecordTuple) -> Iterable[RecordTuple]:
    """The records of one item of `blocks`."""
    return block.records() if isinstance(block, LineRecords) else (block,)


def records(
    stream: ByteStream, start_offset: int = 0, start_line: int = 0, delimiter: str = ","
) -> Iterator[RecordTuple]:
    """`blocks`, record by record."""
    return chain.from_iterable(map(records_of, blocks(stream, start_offset, start_line, delimiter)))


def iter_records(
    stream: ByteStream, start_offset: int = 0, start_line: int = 0, delimiter: str = ","
) -> Iterator[Record]:
    """`records` as `Record`s."""
    for fields, line, end_offset, end_line, oversized, _blank in records(stream, start_offset, start_line, delimiter):
        yield Record(fields, line, end_offset, end_line, oversized)
