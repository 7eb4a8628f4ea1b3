"""The byte layers under the CSV reader: gunzip (with a decompressed-size limit), then transcoding to UTF-8.

`csv_stream` reads UTF-8 bytes and counts its checkpoint offsets in them. A plain UTF-8 upload is
those bytes already, and passes through untouched (a continuation resumes it with a range
request). Any other upload goes through `text_stream`: a `.gz` object is inflated, and a file in
cp1252, latin-1 or UTF-16 is decoded and encoded again as UTF-8, so that the reader's coordinates
are the same text whatever the file's bytes. A continuation of such a file cannot range-read into
its middle (a deflate stream has no entry point but its first byte, and transcoding changes byte
lengths), so it reads the object again from its first byte and drops the text before its
checkpoint (`skipped`). The cost of that, for a 1 GiB file, is measured in BENCHMARKS.md
(`bench/gzip_uploads.py`).

Every layer reads a block of `READ_SIZE` at a time and hands out at most what it is asked for, so
memory stays bounded by a few blocks whatever the file: a gzip bomb (a few kilobytes of deflate data
inflate to gigabytes) is inflated with an output cap per call (zlib's `max_length`, the rest kept in
`unconsumed_tail`), and stops one byte past the stack's limit.

A file that would read as something it is not fails instead: a UTF-8 file on a cp1252 or latin-1
stack (it would be text in either, garbled: `_Utf8Check`), or gzip data under a key not ending
`.gz`; so does a gzip file with a long run of members that hold nothing, which would be read for
minutes without a byte of text (`MAX_EMPTY_MEMBERS`).

A problem with the file is a `FileProblem` whose message names what is wrong, where (byte offsets
in the compressed object for gzip data, in the decompressed bytes for their encoding) and the
setting or action that fixes it; never a character of the file.
"""

from __future__ import annotations

import codecs
import re
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from handlers.producer.csv_stream import (
    BOM,
    ENCODING_SETTING,
    GZIP_MAGIC,
    GZIP_PROBLEM,
    READ_SIZE,
    ByteStream,
    FileProblem,
)

if TYPE_CHECKING:
    from zlib import _Decompress

MAX_DECOMPRESSED_SETTING = "csv-ingest:maxDecompressedBytes"
# Its default (infra/config.py says why this size).
DEFAULT_MAX_DECOMPRESSED_BYTES = 50 * 1024**3
# zlib's wbits for "a gzip header and trailer only", the trailer's CRC-32 and length checked
# (https://docs.python.org/3/library/zlib.html#zlib.decompressobj: "+25 to +31 = 16 + (9 to 15)").
GZIP_WBITS = 31
# A gzip member may hold nothing (RFC 1952 allows it; `gzip.compress(b"")` writes one, 20 bytes), and
# a file made by concatenating others may have a few; no tool writes a thousand in a row. Each costs
# a copy of the rest of its read block (zlib's `unused_data`) and a new inflater, and gives the reader
# nothing: a file of such members would be read at about 5 MB/s with no text, so no limit would
# trip and no checkpoint could be taken. A longer run fails the file where it passes this count.
MAX_EMPTY_MEMBERS = 1000
# How much `skipped` reads at once: larger than a reader's block, so that a continuation skipping a
# gigabyte pays for inflating it and little for Python's calls; still a bounded buffer.
SKIP_READ_SIZE = 1024 * 1024
# What zlib's reasons for a gzip trailer that does not match its data mean (RFC 1952 §2.3.1: CRC32, ISIZE).
_ZLIB_REASONS = {
    "incorrect data check": "its CRC-32 check failed",
    "incorrect length check": "its length check failed",
}
_UTF16_BOMS = {codecs.BOM_UTF16_LE: "utf-16-le", codecs.BOM_UTF16_BE: "utf-16-be"}
# The encodings in which (nearly) every byte is a character, so that a UTF-8 file reads as them
# without an error, garbled (René's é, C3 A9, as Ã©): `_Utf8Check` tells such a file.
_SINGLE_BYTE = ("cp1252", "latin-1")
_NON_ASCII = re.compile(rb"[\x80-\xff]")


def text_stream(raw: ByteStream, *, gzip: bool, encoding: str, max_decompressed_bytes: int) -> ByteStream:
    """The object's bytes, read from its FIRST byte, as the CSV reader reads them: UTF-8 text.

    `raw` is the object from its first byte; `gzip` whether it is gzip data (its key ends `.gz`);
    `encoding` one of `schema.ENCODINGS` (`utf-8` passes the bytes through, a BOM included: the reader
    drops it); `max_decompressed_bytes` the most a gzip object may inflate to."""
    stream = _Gunzip(raw, max_decompressed_bytes) if gzip else raw
    return stream if encoding == "utf-8" else _Transcoder(stream, encoding)


def skipped(stream: ByteStream, count: int) -> ByteStream:
    """`stream` with its first `count` bytes read and dropped (a continuation resuming at an offset of
    the reader's coordinates); FileProblem if it ends before."""
    remaining = count
    while remaining:
        dropped = len(stream.read(min(remaining, SKIP_READ_SIZE)))
        if not dropped:
            raise FileProblem(
                f"the file's text ends after {count - remaining} bytes, before byte offset {count} where this"
                f" invocation resumes: the file or {ENCODING_SETTING} changed while it was read; upload it again"
            )
        remaining -= dropped
    return stream


def _read_size(size: int) -> int:
    """A read's size as a file's `read` takes it: a negative one (read "all") reads one block."""
    return READ_SIZE if size < 0 else size


# --- gzip --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Replay:
    """What replays the current inflater's input a byte at a time, only when zlib fails, to name the
    compressed byte it failed at (Python's zlib error says why, not where): the inflater as it was
    before its latest input, where that input starts in the object, and the input."""

    inflater: _Decompress
    offset: int
    data: bytes

    def failing_offset(self) -> int:
        inflater = self.inflater.copy()
        for index in range(len(self.data)):
            tail = self.data[index : index + 1]
            try:
                while True:  # every byte's output, in bounded pieces, so that the failing byte is the one
                    out = inflater.decompress(tail, READ_SIZE)
                    tail = inflater.unconsumed_tail
                    if not out and not tail:
                        break
            except zlib.error:
                return self.offset + index
        return self.offset + len(self.data) - 1  # not reached: the same input failed as a whole


class _Gunzip:
    """The inflated bytes of a gzip object, every member of it (as `gzip` and `pigz` write several,
    and `gzip.open` reads them through: https://docs.python.org/3/library/gzip.html), at most
    `limit` of them."""

    def __init__(self, raw: ByteStream, limit: int) -> None:
        self._raw = raw
        self._limit = limit
        self._produced = 0
        self._read = 0  # compressed bytes read from `raw`
        self._tail = b""  # compressed bytes read and not yet inflated
        self._members = 0
        self._member_start = 0  # the current member's first byte in the object
        self._produced_before = 0  # `_produced` when the current member started
        self._empty_run = 0  # members in a row, up to the current one, that held nothing
        self._inflater: _Decompress | None = None  # None between members
        self._replay = _Replay(zlib.decompressobj(wbits=GZIP_WBITS), 0, b"")

    def read(self, size: int = READ_SIZE, /) -> bytes:
        size = _read_size(size)
        while size:
            if self._inflater is None and not self._start_member():
                return b""
            if out := self._inflate(size):
                return out
            if self._inflater is not None and not self._tail:
                self._more()
        return b""

    def _start_member(self) -> bool:
        """At the next member's first byte with a new inflater; False at the end of the object.

        After a member, zero bytes are padding, skipped as `gzip.open` skips them (CPython's
        Lib/gzip.py, `_GzipReader._read_eof`)."""
        while True:
            if self._members:
                self._tail = self._tail.lstrip(b"\x00")
            if len(self._tail) >= len(GZIP_MAGIC) or not self._more_tail():
                break
        if not self._tail:
            return False
        start = self._read - len(self._tail)
        if not GZIP_MAGIC.startswith(self._tail[: len(GZIP_MAGIC)]):
            if not self._members:
                raise FileProblem(
                    "not gzip: the key ends in .gz but the object is not gzip-compressed data; upload it without"
                    " the .gz suffix, or compress it with gzip"
                )
            raise FileProblem(
                f"corrupt gzip data: bytes after the end of its compressed data are not gzip (compressed byte"
                f" offset {start}); upload the file again"
            )
        if len(self._tail) < len(GZIP_MAGIC):
            raise self._truncated()
        self._inflater = zlib.decompressobj(wbits=GZIP_WBITS)
        self._replay = _Replay(self._inflater.copy(), start, self._tail)
        self._members += 1
        self._member_start, self._produced_before = start, self._produced
        return True

    def _more_tail(self) -> bool:
        data = self._raw.read(READ_SIZE)
        self._read += len(data)
        self._tail += data
        return bool(data)

    def _more(self) -> None:
        """Read the current member's next input, keeping what replays it (`_Replay`)."""
        assert self._inflater is not None, "only inside a member"
        offset = self._read
        if not self._more_tail():
            raise self._truncated()
        self._replay = _Replay(self._inflater.copy(), offset, self._tail)

    def _inflate(self, size: int) -> bytes:
        """At most `size` bytes more, and never more than one byte past the limit."""
        assert self._inflater is not None, "only inside a member"
        try:
            out = self._inflater.decompress(self._tail, min(size, self._limit - self._produced + 1))
        except zlib.error as error:
            raise self._corrupt(error) from None
        self._produced += len(out)
        if self._produced > self._limit:
            raise FileProblem(
                f"the file decompresses to more than {self._limit} bytes ({MAX_DECOMPRESSED_SETTING}); raise it,"
                " or split the file"
            )
        if self._inflater.eof:  # past the member's trailer, its checks passed
            self._tail, self._inflater = self._inflater.unused_data, None
            self._member_ended()
        else:
            self._tail = self._inflater.unconsumed_tail
        return out

    def _member_ended(self) -> None:
        """Count the member if it held nothing; fail past `MAX_EMPTY_MEMBERS` such in a row."""
        self._empty_run = self._empty_run + 1 if self._produced == self._produced_before else 0
        if self._empty_run > MAX_EMPTY_MEMBERS:
            raise FileProblem(
                f"not a gzip file of text: more than {MAX_EMPTY_MEMBERS} gzip members in a row hold nothing"
                f" (compressed byte offset {self._member_start}); compress the file again with gzip"
            )

    def _corrupt(self, error: zlib.error) -> FileProblem:
        # zlib's reasons are fixed texts, never the data ("Error -3 while decompressing data: invalid block type").
        reason = str(error).partition(": ")[2] or str(error)
        reason = _ZLIB_REASONS.get(reason, reason)
        return FileProblem(
            f"corrupt gzip data: {reason} (compressed byte offset {self._replay.failing_offset()}); upload the file"
            " again"
        )

    def _truncated(self) -> FileProblem:
        return FileProblem(
            f"truncated gzip file: it ends after {self._read} bytes, in the middle of its compressed data; upload"
            " the whole file again"
        )


# --- transcoding --------------------------------------------------------------------------------------


class _Transcoder:
    """The UTF-8 text (no BOM) of a stream in `encoding` (cp1252, latin-1, or utf-16 with its BOM),
    decoded a block at a time by an incremental decoder
    (https://docs.python.org/3/library/codecs.html#codecs.getincrementaldecoder), which keeps a
    character split between two reads for the next one.

    A file that cannot be text in `encoding` fails at the first byte that shows it, named by its
    offset in the stream it reads (the decompressed bytes of a gzip file); so does a UTF-8 file read
    as cp1252 or latin-1, which would be text in them, garbled (`_Utf8Check`)."""

    def __init__(self, source: ByteStream, encoding: str) -> None:
        self._source = source
        self._encoding = encoding
        self._codec = encoding  # `utf-16`'s byte order, once its BOM is read
        self._decoder: codecs.IncrementalDecoder | None = None
        self._fed = 0  # source bytes given to the decoder, or skipped as a BOM
        self._out = b""
        self._at = 0  # the next byte of `_out` to hand out
        self._done = False
        self._utf8_check = _Utf8Check(encoding) if encoding in _SINGLE_BYTE else None  # None once decided

    def read(self, size: int = READ_SIZE, /) -> bytes:
        size = _read_size(size)
        while self._at == len(self._out) and size:
            if self._done:
                return b""
            self._out, self._at = self._next_text(), 0
        piece = self._out[self._at : self._at + size]  # the whole `_out` is not copied
        self._at += len(piece)
        return piece

    def _next_text(self) -> bytes:
        data = self._start() if self._decoder is None else self._source.read(READ_SIZE)
        decoder = self._decoder
        assert decoder is not None, "started"
        start = self._fed - len(decoder.getstate()[0])  # where the next character starts (utf-16 buffers)
        if self._utf8_check is not None:
            data = self._utf8_checked(data)
        try:
            text = decoder.decode(data, final=not data)
        except UnicodeDecodeError as error:
            raise self._undecodable(error, start) from None
        self._fed += len(data)
        self._done = not data
        if (nul := text.find("\x00")) != -1:
            offset = start + len(text[:nul].encode(self._codec))
            raise FileProblem(
                f"not a text CSV file: a NUL character (U+0000) at byte offset {offset}, which no text file holds;"
                f" check that the file is a CSV in {self._encoding} ({ENCODING_SETTING})"
            )
        return text.encode("utf-8")

    def _utf8_checked(self, data: bytes) -> bytes:
        """`data`, checked by `_Utf8Check` (`FileProblem` if it shows a UTF-8 file); with the source's
        next bytes after it when a UTF-8 sequence cut by its end must be whole to decide, as decoding
        it would otherwise fail first on one of the sequence's bytes (0x90 of F0 90 80 80, for cp1252)."""
        check = self._utf8_check
        assert check is not None, "only until decided"
        piece = data
        while not check.decided(piece, self._fed + len(data) - len(piece)):
            if not check.cut:
                return data  # no non-ASCII byte yet
            piece = self._source.read(READ_SIZE)
            data += piece
        self._utf8_check = None
        return data

    def _start(self) -> bytes:
        """The file's first bytes, past a BOM its encoding reads; the decoder made."""
        head = b""
        while len(head) < len(BOM) and (data := self._source.read(READ_SIZE)):
            head += data
        if head.startswith(GZIP_MAGIC):
            raise FileProblem(GZIP_PROBLEM)  # its NUL bytes or its byte order mark would say it is not text
        if head.startswith(BOM):
            raise FileProblem(
                f"UTF-8, not {self._encoding}: the file starts with the UTF-8 byte order mark (EF BB BF); set"
                f" {ENCODING_SETTING} to utf-8"
            )
        if self._encoding == "utf-16" and head:
            self._codec = _UTF16_BOMS.get(head[:2], "")
            if not self._codec:
                raise FileProblem(
                    f"not UTF-16 with a byte order mark: the stack reads files as utf-16 ({ENCODING_SETTING}), and"
                    " this one does not start with FF FE or FE FF"
                )
            head, self._fed = head[2:], 2
        self._decoder = codecs.getincrementaldecoder(self._codec)()
        return head

    def _undecodable(self, error: UnicodeDecodeError, start: int) -> FileProblem:
        """`error` at `start + error.start` (the decoder's buffered bytes, then its input)."""
        offset = start + error.start
        found = " ".join(f"0x{byte:02x}" for byte in error.object[error.start : error.end])
        if self._encoding == "utf-16":
            if error.reason == "truncated data":
                problem = f"the file ends after {offset + 1} bytes, in the middle of a character"
            else:
                problem = f"bytes {found} at byte offset {offset} are half of a surrogate pair, with no other half"
            return FileProblem(f"not UTF-16: {problem} ({ENCODING_SETTING})")
        return FileProblem(
            f"not {self._encoding}: byte {found} at byte offset {offset} has no character in {self._encoding}"
            f" ({ENCODING_SETTING})"
        )


class _Utf8Check:
    """Whether a file read as cp1252 or latin-1 is UTF-8, from its first non-ASCII bytes: those of a
    UTF-8 file are multibyte sequences (C3 A9 for é), while a real cp1252 or latin-1 file's are not
    (é is E9, followed by an ASCII byte: never UTF-8). So the first block that holds a non-ASCII byte
    is decoded as UTF-8, strictly, from that byte to its end
    (https://docs.python.org/3/library/codecs.html#error-handlers): if that succeeds and yields a
    non-ASCII character, the file is UTF-8 and fails, with the setting that reads it. A sequence cut
    by the end of the block is kept by the incremental decoder (`cut`) and decided with the next bytes."""

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._first = -1  # the offset of the file's first non-ASCII byte, once read
        self.cut = False  # whether the first non-ASCII bytes read so far are a cut UTF-8 sequence

    def decided(self, data: bytes, offset: int) -> bool:
        """Whether the file is known not to be UTF-8 once `data` (at `offset` in the stream, empty at
        its end) is read; `FileProblem` if it is UTF-8."""
        if self._first == -1:
            found = None if data.isascii() else _NON_ASCII.search(data)
            if found is None:
                return not data  # all ASCII so far: nothing to tell
            self._first = offset + found.start()
            data = data[found.start() :]
        try:
            text = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError:
            return True  # a byte that cannot be UTF-8 there: the file's own encoding
        self.cut = text.isascii()  # nothing decoded yet: the first sequence is cut by the end of `data`
        if self.cut:
            return False
        raise FileProblem(
            f"UTF-8, not {self._encoding}: the file's first non-ASCII bytes (byte offset {self._first}) are UTF-8;"
            f" set {ENCODING_SETTING} to utf-8"
        )
