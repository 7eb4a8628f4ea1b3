"""Hostile files made at test time as streams of blocks, never as one big string, and uploaded as such.

A file here is a description (`Hostile`): its blocks, its size, and the rows the rules give it. The
biggest (a gigabyte) is never held in this process: `BlockStream` hands boto3 one block at a time,
and boto3 uploads it in parts.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import repeat

MIB = 1024 * 1024
BLOCK = MIB


class BlockStream(io.RawIOBase):
    """A read-only file over an iterator of byte blocks (what `upload_fileobj` reads from)."""

    def __init__(self, blocks: Iterable[bytes]) -> None:
        self._blocks = iter(blocks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._pending = memoryview(block)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def repeated(unit: bytes, total: int) -> Iterator[bytes]:
    """`total` bytes of `unit` repeated, in blocks of about a MiB (`unit` must divide `BLOCK`)."""
    assert BLOCK % len(unit) == 0
    block = unit * (BLOCK // len(unit))
    whole, rest = divmod(total, BLOCK)
    yield from repeat(block, whole)
    if rest:
        yield block[:rest]


@dataclass(frozen=True)
class Hostile:
    name: str
    blocks: Callable[[], Iterator[bytes]]
    size: int

    @property
    def stem(self) -> str:
        return self.name.removesuffix(".csv")

    def stream(self) -> io.BufferedReader:
        return io.BufferedReader(BlockStream(self.blocks()), buffer_size=BLOCK)


def _chain(*parts: bytes | Iterable[bytes]) -> Iterator[bytes]:
    for part in parts:
        if isinstance(part, bytes):
            yield part
        else:
            yield from part


def wide_header(columns: int) -> Hostile:
    """A header of `columns` columns (`name`, `mail`, then `h00003x`, …) and one valid row."""
    header = ",".join(["name", "mail", *(f"h{i:05d}x" for i in range(3, columns + 1))]).encode() + b"\n"
    row = b"Ada Widefile,ada@wide-hostile.example.com" + b"," * (columns - 2) + b"\n"
    return Hostile("wide_header.csv", lambda: iter((header, row)), len(header) + len(row))


def huge_field(field_bytes: int) -> tuple[Hostile, int]:
    """A valid row, a row whose ignored cell is `field_bytes` long, a valid row; and that record's
    length in bytes (newline included)."""
    head = b"name,mail,notes\nAda Hugefield,ada@huge-field.example.com,short\n"
    head += b"Grace Hugefield,grace@huge-field.example.com,"
    tail = b"\nAlan Hugefield,alan@huge-field.example.com,short\n"
    record = len(b"Grace Hugefield,grace@huge-field.example.com,") + field_bytes + 1
    return (
        Hostile(
            "huge_field.csv",
            lambda: _chain(head, repeated(b"x", field_bytes), tail),
            len(head) + field_bytes + len(tail),
        ),
        record,
    )


def commas(total: int) -> Hostile:
    """`total` commas and nothing else: one record of `total + 1` empty fields, no newline."""
    return Hostile(f"commas_{total}.csv", lambda: repeated(b",", total), total)


NESTED_NAME_QUOTES = 100_000
NESTED_OVERSIZED_QUOTES = 700_000


def nested_quotes() -> tuple[Hostile, int]:
    """Quotes within quotes: a name of 100,000 escaped quotes (`""`), a cell of 700,000 escaped quotes
    with commas and newlines between them (a record over 1 MiB), quotes opening and closing around
    every character of a valid name; and the oversized record's length."""
    name_cell = b'"' + b'""' * NESTED_NAME_QUOTES + b'"'
    oversized = b'"' + b'"",\n' * NESTED_OVERSIZED_QUOTES + b'"'
    lines = [
        b"name,mail,phone",
        name_cell + b",quotes@nested.example.com,",
        b"Grace Nested," + b"grace@nested.example.com," + oversized,
        b'"Ada ""Quoted"" Nested","ada@nested.example.com",""',
    ]
    body = b"\n".join(lines) + b"\n"
    return Hostile("nested_quotes.csv", lambda: iter((body,)), len(body)), len(lines[2]) + 1


def unclosed_quote(total: int) -> Hostile:
    """A header, then a quote opened and never closed, followed by `total` bytes of `a""\n`."""
    head = b'name,mail\n"'
    return Hostile("unclosed_quote.csv", lambda: _chain(head, repeated(b'a""\n', total)), len(head) + total)


BOMB_MEMBER = 16 * MIB


def gzip_bomb(expanded: int) -> Hostile:
    """A gzip file expanding to `expanded` bytes of valid CSV rows (about 300 times smaller), named
    .csv: one member of 16 MiB of rows, compressed once and repeated (RFC 1952: a gzip file is a
    series of members, decompressed one after the other)."""
    row = b"Bomb Row,bomb@gzip-bomb.example.com,+44 20 7946 0000\n"
    header = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = header.compress(b"name,mail,phone\n") + header.flush()
    member = zlib.compressobj(9, zlib.DEFLATED, 31)
    body = member.compress(row * (BOMB_MEMBER // len(row))) + member.flush()
    count = expanded // BOMB_MEMBER
    return Hostile("gzip_bomb.csv", lambda: _chain(first, repeat(body, count)), len(first) + len(body) * count)
