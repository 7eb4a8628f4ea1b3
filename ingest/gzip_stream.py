"""A file gzipped as it is read: what `ingest upload --gzip` sends, and what `upload --check --gzip`
checks (the same bytes, so the same size against the stack's `maxUploadBytes`)."""

from __future__ import annotations

import io
import zlib
from typing import Any, BinaryIO

# Python's default level (https://docs.python.org/3/library/zlib.html#zlib.compressobj): most of
# level 9's ratio on text, several times faster.
GZIP_LEVEL = 6
# `wbits` 31: a gzip header and trailer around the deflate stream, a 32 KiB window
# (https://docs.python.org/3/library/zlib.html#zlib.compressobj).
GZIP_WBITS = 16 + zlib.MAX_WBITS
# The file is read and compressed this much at a time: what `GzipReader` holds beyond what it was asked for.
GZIP_READ_BYTES = 1024 * 1024


class GzipReader(io.RawIOBase):
    """A file's bytes gzipped as they are read (level `GZIP_LEVEL`): what `upload_fileobj` reads to
    send, never the whole file nor its whole compressed form.

    A read of n bytes returns n of them unless the stream ends first: a short read would end an S3
    part early, and every part but the last must be at least 5 MiB
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html). To fill it, the file is
    read `GZIP_READ_BYTES` at a time, so at most n bytes and one block's compressed output are held
    (`most_held` says how many were). `produced` counts the compressed bytes handed out: once the
    stream has ended, the size of the object it makes."""

    def __init__(self, source: BinaryIO | io.RawIOBase) -> None:
        self._source = source
        self._compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, GZIP_WBITS)
        self._pending = bytearray()
        self._ended = False
        self.most_held = 0
        self.produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wanted = len(buffer)
        while len(self._pending) < wanted and not self._ended:
            block = self._source.read(GZIP_READ_BYTES)
            if block:
                self._pending += self._compressor.compress(block)
            else:
                self._pending += self._compressor.flush()
                self._ended = True
            self.most_held = max(self.most_held, len(self._pending))
        count = min(wanted, len(self._pending))
        buffer[:count] = self._pending[:count]
        del self._pending[:count]
        self.produced += count
        return count

    def size(self) -> int:
        """The whole compressed size: what is left of the file is compressed (and dropped) to count it."""
        while self.read(GZIP_READ_BYTES):
            pass
        return self.produced
