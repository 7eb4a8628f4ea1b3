"""How one upload is read: gzip or not, its encoding, and its delimiter.

Two things fix an upload's reading before a byte of it is read (`reading_for`): its key (a key
ending `.gz` is gzip, one ending `.tsv` or `.tsv.gz` is tab-delimited) and the stack's
`csv-ingest:schema.format` (its encoding, and a delimiter fixed for every file). Otherwise the
delimiter is detected from the header line (`detect`): of comma, semicolon, tab and pipe, the one
that splits the header into the schema's columns. A header no delimiter splits is one column, read
with the default (comma); a header several delimiters split into the schema's columns is ambiguous
and fails the file, naming the setting that settles it. Messages give column counts, never a cell.

The format an upload was read with is kept on its checkpoint (`FileFormat.to_dict`), so every later
invocation reads the file as the first one did.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from handlers.common.schema import DELIMITERS, Format, delimiter_name
from handlers.producer.csv_stream import BOM, MAX_RECORD_BYTES, READ_SIZE, ByteStream, FileProblem

GZIP_SUFFIX = ".gz"
TAB_SUFFIXES = (".tsv", ".tsv.gz")
DEFAULT_DELIMITER = DELIMITERS["comma"]
DELIMITER_SETTING = "csv-ingest:schema.format.delimiter"


@dataclass(frozen=True)
class Reading:
    """What an upload's key and the stack fix before the file is read."""

    gzip: bool
    encoding: str
    delimiter: str | None
    """Fixed by the stack or by a `.tsv` key; None: detected from the header line."""


def reading_for(key: str, fmt: Format) -> Reading:
    """How the object under `key` is read by a stack whose files are `fmt`."""
    delimiter = fmt.delimiter
    if delimiter is None and key.endswith(TAB_SUFFIXES):
        delimiter = DELIMITERS["tab"]
    return Reading(gzip=key.endswith(GZIP_SUFFIX), encoding=fmt.encoding, delimiter=delimiter)


@dataclass(frozen=True)
class FileFormat:
    """How one upload is read, its delimiter known."""

    gzip: bool
    encoding: str
    delimiter: str
    detected: bool = False
    """Whether the delimiter was detected from the header line (not fixed by the stack or the key)."""

    @property
    def plain(self) -> bool:
        """Whether the reader's offsets are the object's own bytes (an uncompressed UTF-8 file): a
        continuation then resumes with a range request; any other file is read again from its
        first byte, through gunzip and transcoding, to the offset (`handlers/producer/sources.py`)."""
        return not self.gzip and self.encoding == "utf-8"

    def to_dict(self) -> dict[str, Any]:
        return {
            "gzip": self.gzip,
            "encoding": self.encoding,
            "delimiter": delimiter_name(self.delimiter),
            "detected": self.detected,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FileFormat:
        """The format `to_dict` kept; a checkpoint written before formats existed read a plain
        comma-delimited UTF-8 file."""
        if data is None:
            return cls(gzip=False, encoding="utf-8", delimiter=DEFAULT_DELIMITER)
        return cls(bool(data["gzip"]), str(data["encoding"]), DELIMITERS[data["delimiter"]], bool(data["detected"]))


def detect(
    stream: ByteStream, reading: Reading, header_problem: Callable[[list[str]], str | None]
) -> tuple[FileFormat, ByteStream]:
    """The upload's format, and `stream` (the reader's text, from its first byte) to read it from,
    replaying what was looked at. `header_problem(fields)` says why a header row is not one of the
    schema (None when it is). `FileProblem` when several delimiters split the header line into the
    schema's columns, or some split it and none into them."""
    if reading.delimiter is not None:
        return FileFormat(reading.gzip, reading.encoding, reading.delimiter), stream
    head, stream = _peek_header(stream)
    splits = {d: fields for d in DELIMITERS.values() if (fields := _first_row(head, d)) is not None and len(fields) > 1}
    fitting = [d for d, fields in splits.items() if header_problem(fields) is None]
    if len(fitting) > 1:
        named = " and ".join(f"{delimiter_name(d)} ({len(splits[d])} columns)" for d in fitting)
        raise FileProblem(
            f"ambiguous header: it splits into the schema's columns at {named}; set {DELIMITER_SETTING}"
            " to the file's delimiter"
        )
    if fitting:
        chosen = fitting[0]
    elif len(splits) > 1:
        counts = ", ".join(f"{delimiter_name(d)} gives {len(fields)} columns" for d, fields in splits.items())
        unsplit = [delimiter_name(d) for d in DELIMITERS.values() if d not in splits]
        rest = f" ({' and '.join(unsplit)}: 1 column)" if unsplit else ""
        raise FileProblem(
            f"the header line splits into the schema's columns at none of the delimiters tried: {counts}{rest};"
            f" set {DELIMITER_SETTING} to the file's delimiter to see which column its header lacks"
        )
    else:
        # One delimiter splits it (its header's problem, if any, is then the file's, as for a comma
        # file), or none does: a one-column header, read with the default.
        chosen = next(iter(splits), DEFAULT_DELIMITER)
        fields = _first_row(head, chosen)
        if not splits and fields is not None and (problem := header_problem(fields)) is not None:
            tried = ", ".join(DELIMITERS)
            raise FileProblem(f"{problem}; the header line splits at none of the delimiters tried ({tried})")
    return FileFormat(reading.gzip, reading.encoding, chosen, detected=True), stream


def how_read(fmt: FileFormat, stack: Format) -> str:
    """Where the file's delimiter came from, for a header that does not name the schema's columns
    with it: the setting or name to change if it is the wrong one."""
    name = delimiter_name(fmt.delimiter)
    if fmt.detected:
        tried = ", ".join(DELIMITERS)
        return f"the file was read as {name}-delimited, the only one of {tried} that splits its header line"
    if stack.delimiter is not None:
        return f"the file was read as {name}-delimited, as {DELIMITER_SETTING} says"
    return f"the file was read as {name}-delimited, as its {TAB_SUFFIXES[0]} name says (a .csv name has it detected)"


def _first_row(head: str, delimiter: str) -> list[str] | None:
    """The first record of `head` that is not blank, read with `delimiter` as the reader reads it;
    None when there is none, or when `head` is not CSV with it (the reader then says why)."""
    try:
        for fields in csv.reader(io.StringIO(head, newline=""), strict=True, delimiter=delimiter):
            if "".join(fields).strip():
                return fields
    except csv.Error:
        return None
    return None


def _peek_header(stream: ByteStream) -> tuple[str, ByteStream]:
    """The text of the stream's first lines, up to the end of its first record that is not blank (or
    about `MAX_RECORD_BYTES` of them, or the first byte that is not UTF-8: the reader then names it),
    and a stream that gives every byte read again."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    header_end = _HeaderEnd()
    read: list[bytes] = []
    text, size = "", 0
    while size <= MAX_RECORD_BYTES:
        block = stream.read(READ_SIZE)
        read.append(block)
        size += len(block)
        try:
            piece = decoder.decode(block, final=not block)
        except UnicodeDecodeError:
            break
        text += piece
        if not block or header_end.seen(piece):
            break
    return text.removeprefix(BOM.decode()), _Replay(b"".join(read), stream)


class _HeaderEnd:
    """Whether a record with more than spaces and delimiters in it has ended, fed the text piece by
    piece: a line end outside quotes (an even number of quotes so far: `""` inside a quoted field is
    two) after such a record. Each line is looked at once."""

    _BLANK = frozenset(" \r\n" + "".join(DELIMITERS.values()))

    def __init__(self) -> None:
        self._partial = ""  # the last line, not ended yet
        self._quotes = 0
        self._content = False

    def seen(self, piece: str) -> bool:
        lines = io.StringIO(self._partial + piece, newline="").readlines()
        self._partial = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
        for line in lines:
            self._quotes += line.count('"')
            self._content = self._content or not set(line) <= self._BLANK
            if self._quotes % 2 == 0:
                if self._content:
                    return True
                self._content = False
        return False


class _Replay:
    """A stream that gives `head` first, then the rest of `stream`."""

    def __init__(self, head: bytes, stream: ByteStream) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1, /) -> bytes:
        if not self._head:
            return self._stream.read(size)
        if size < 0:
            taken, self._head = self._head + self._stream.read(), b""
        else:
            taken, self._head = self._head[:size], self._head[size:]
        return taken
