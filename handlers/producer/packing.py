"""Pack valid rows into chunks: at most N rows, and always within SQS's size limits."""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate, count
from typing import Generic, Protocol, TypeVar

from handlers.common.chunks import MAC_ATTRIBUTE_BYTES, Chunk, Row

# SendMessageBatch takes at most 10 entries, and "the maximum allowed individual message size and
# the maximum total payload size (the sum of the individual lengths of all of the batched
# messages) are both 1 MiB (1,048,576 bytes)"
# (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html);
# a queue's MaximumMessageSize may set a lower limit per message (1,024 to 1,048,576 bytes,
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html).
MAX_BATCH_ENTRIES = 10
API_MAX_BATCH_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Budgets:
    """Bytes per SendMessageBatch call and per chunk, from the queue's maximum message size."""

    batch_bytes: int
    """What one call may carry: its messages' bodies and attributes."""
    chunk_bytes: int
    """What one chunk's body may hold: a tenth of the batch, less its MAC attribute."""

    @classmethod
    def for_queue(cls, max_message_bytes: int) -> Budgets:
        """Whether SQS measures a batch against the queue's limit or the API's, ten messages of a
        tenth of the smaller one always fit one call, and each message fits the queue. A message
        is its body and its MAC attribute, whose name, type and value SQS counts towards its size
        (`chunks.MAC_ATTRIBUTE_BYTES`)."""
        batch = min(max_message_bytes, API_MAX_BATCH_BYTES)
        return cls(batch_bytes=batch, chunk_bytes=batch // MAX_BATCH_ENTRIES - MAC_ATTRIBUTE_BYTES)


# The largest a valid row can encode to: a 256-character name of characters outside the BMP,
# which ASCII JSON writes as two \uXXXX escapes (12 bytes each), a 254-character email, a
# 16-character phone, keys and numbers.
MAX_ROW_BYTES = 256 * 12 + 254 + 16 + 96

RowT = TypeVar("RowT")
ChunkT = TypeVar("ChunkT", bound="Encodable")
ChunkFactory = Callable[[int, tuple[Row, ...]], Chunk]

# A string as `json.dumps` writes it with ensure_ascii (its default, and Chunk.encode's): json's own
# C function, so a row encoded here is byte for byte the row in the chunk's body.
_json_string: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


# How `Chunk.encode` ends a body with no rows: `"rows":[]}`, its last member.
_NO_ROWS = "[]}"


class Encodable(Protocol):
    """What the sender sends: a chunk's number and its body."""

    @property
    def chunk(self) -> int: ...

    def encode(self) -> str: ...


def encode_rows(first: int, emails: list[str], names: list[str], phones: list[str | None]) -> list[str]:
    """The JSON of consecutive rows numbered from `first`, given by column, exactly as `Chunk.encode`
    writes them (`Row.to_json`, compact, ASCII), without building the `Row`s: the producer encodes
    each row once, as it packs it."""
    rows = zip(count(first), _json_strings(emails), _json_strings(names), _json_phones(phones), strict=False)
    return [f'{{"row":{number},"email":{email},"name":{name},"phone":{phone}}}' for number, email, name, phone in rows]


def encode_row(number: int, email: str, name: str, phone: str | None) -> str:
    """`encode_rows` of one row."""
    return encode_rows(number, [email], [name], [phone])[0]


def _json_strings(values: list[str]) -> list[str]:
    """Each value as JSON writes it: a column of plain values (printable ASCII, no quote, no
    backslash: almost always) is quoted as it is, all at once; any other through json's encoder."""
    text = "".join(values)
    if values and text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return ('"' + '"\n"'.join(values) + '"').split("\n")  # no plain value holds a line end
    return list(map(_json_string, values))


def _json_phones(phones: list[str | None]) -> list[str]:
    if None not in phones:
        return _json_strings(phones)  # type: ignore[arg-type]
    return ["null" if phone is None else _json_string(phone) for phone in phones]


def row_bytes(row: Row) -> int:
    """Exactly `len(json.dumps(row.to_json(), separators=(",", ":")))`."""
    return len(encode_row(row.row, row.email, row.name, row.phone))


@dataclass(frozen=True)
class EncodedChunk:
    """A chunk as the producer sends it: its number and its body, `Chunk.encode`'s exact text."""

    chunk: int
    body: str

    def encode(self) -> str:
        return self.body


def encoded_chunks(make_chunk: ChunkFactory) -> Callable[[int, tuple[str, ...]], EncodedChunk]:
    """Chunks of encoded rows (`encode_row`): the body `make_chunk` gives the chunk with no rows,
    its rows joined into it once. `rows` is the body's last member (`Chunk.encode`)."""

    def make(number: int, rows: tuple[str, ...]) -> EncodedChunk:
        envelope = make_chunk(number, ()).encode()
        if not envelope.endswith(_NO_ROWS):
            raise ValueError("a chunk's body must end with its rows")
        return EncodedChunk(number, f"{envelope[: -len(_NO_ROWS)]}[{','.join(rows)}]}}")

    return make


class ChunkPacker(Generic[RowT, ChunkT]):
    """Accumulates rows and closes a chunk as soon as it is full.

    A chunk closes when it holds `rows_per_chunk` rows or when one more row of the largest
    possible size might not fit, so it never needs a row it has not seen to decide. Boundaries
    therefore depend only on the rows since the last boundary: packing the same rows from the
    same chunk number always gives the same chunks, and any moment the packer is `empty` is a
    safe checkpoint (a resumed file re-creates exactly the chunks a single pass would).

    Rows are `Row`s made into `Chunk`s by default; the producer packs encoded rows (`encode_row`,
    `size_of=len`) into `encoded_chunks`, the same boundaries for the same rows.
    """

    def __init__(
        self,
        make_chunk: Callable[[int, tuple[RowT, ...]], ChunkT],
        next_chunk: int,
        rows_per_chunk: int,
        max_bytes: int,
        size_of: Callable[[RowT], int] = row_bytes,  # type: ignore[assignment]
    ) -> None:
        self._make_chunk = make_chunk
        self._size_of = size_of
        self.next_chunk = next_chunk
        self._rows_per_chunk = rows_per_chunk
        # The envelope, plus room for larger numbers than the probe's.
        self._room = max_bytes - len(make_chunk(0, ()).encode().encode()) - 32
        if self._room < MAX_ROW_BYTES:
            raise ValueError(f"max_bytes = {max_bytes} leaves no room for a row of {MAX_ROW_BYTES} bytes")
        self._rows: list[RowT] = []
        self._bytes = 0
        self.empty = True
        """No rows since the last chunk closed (an attribute, not a property: read once per record)."""

    def add(self, row: RowT) -> ChunkT | None:
        """Add a row; return the chunk it completed, if it did."""
        size = self._size_of(row) + 1  # + the separating comma
        if size > MAX_ROW_BYTES:
            raise ValueError(f"a row is {size} bytes encoded; validation caps rows at {MAX_ROW_BYTES}")
        self._rows.append(row)
        self._bytes += size
        self.empty = False
        if len(self._rows) >= self._rows_per_chunk or self._bytes + MAX_ROW_BYTES > self._room:
            return self.flush()
        return None

    def add_many(self, rows: list[RowT], start: int, stop: int) -> tuple[int, ChunkT | None]:
        """`add` rows[start:stop] in order until one completes a chunk: the index after the last row
        added, and that chunk (None if none did). The same boundaries as `add` row by row, found
        with sums and a bisection instead of a step per row."""
        stop = min(stop, start + self._rows_per_chunk - len(self._rows))  # no chunk takes more
        sizes = [size + 1 for size in map(self._size_of, rows[start:stop])]  # + the separating comma
        if not sizes:
            return start, None
        if max(sizes) > MAX_ROW_BYTES:
            raise ValueError(f"a row is {max(sizes)} bytes encoded; validation caps rows at {MAX_ROW_BYTES}")
        totals = list(accumulate(sizes))
        # The chunk closes at the row that fills it, or after which one more row might not fit.
        by_count = self._rows_per_chunk - len(self._rows) - 1
        by_bytes = bisect_right(totals, self._room - MAX_ROW_BYTES - self._bytes)
        last = min(by_count, by_bytes, len(sizes) - 1)
        self._rows.extend(rows[start : start + last + 1])
        self._bytes += totals[last]
        self.empty = False
        return start + last + 1, self.flush() if last in (by_count, by_bytes) else None

    def flush(self) -> ChunkT | None:
        """Close the open chunk (if any rows are in it) and return it."""
        if not self._rows:
            return None
        chunk = self._make_chunk(self.next_chunk, tuple(self._rows))
        self.next_chunk += 1
        self._rows, self._bytes, self.empty = [], 0, True
        return chunk
