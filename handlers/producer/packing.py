"""Pack valid rows into chunks: at most N rows, and always within SQS's size limits."""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from itertools import accumulate, count
from typing import Generic, Protocol, TypeVar

from handlers.common.chunks import MAC_ATTRIBUTE_BYTES, ROW_SPACE, Chunk, Row, Source
from handlers.common.schema import MAX_NUMBER_DIGITS, MIN_NUMBER_EXPONENT, Column, Schema, Value
from handlers.common.validation import MAX_EMAIL_LENGTH

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


RowT = TypeVar("RowT")
ChunkT = TypeVar("ChunkT", bound="Encodable")
ChunkFactory = Callable[[int, tuple[Row, ...]], Chunk]

# A string as `json.dumps` writes it with ensure_ascii (its default, and Chunk.encode's): json's own
# C function, so a row encoded here is byte for byte the row in the chunk's body.
_json_string: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
# How JSON writes the values that are not text or numbers (a dict: looked up in C, a column at once).
_JSON_LITERALS: Mapping[Value, str] = {True: "true", False: "false", None: "null"}

# How `Chunk.encode` ends a body with no rows: `"rows":[]}`, its last member.
_NO_ROWS = "[]}"


class Encodable(Protocol):
    """What the sender sends: a chunk's number and its body."""

    @property
    def chunk(self) -> int: ...

    def encode(self) -> str: ...


# --- the largest row ---------------------------------------------------------------------------

# The most bytes a valid value of each type encodes to in a chunk (compact ASCII JSON, quotes
# included), from the type's rules (`handlers/common/schema.py`): ASCII JSON writes a character
# outside the BMP as two \uXXXX escapes, 12 bytes; an email address is ASCII (its pattern) and at
# most MAX_EMAIL_LENGTH characters; a phone number `+` and at most 15 digits; an integer a sign and
# MAX_NUMBER_DIGITS digits; a decimal without exponent at its smallest magnitude (1E-130) is a sign,
# `0.`, 129 zeros and MAX_NUMBER_DIGITS digits; `false`; `2026-12-06`; `2026-12-06T15:43:50.000Z`.
_MAX_VALUE_BYTES: Mapping[str, Callable[[Column], int]] = {
    "text": lambda column: 12 * column.max_length + 2,
    "email": lambda _column: MAX_EMAIL_LENGTH + 2,
    "phone": lambda _column: 16 + 2,
    "integer": lambda _column: 1 + MAX_NUMBER_DIGITS,
    "decimal": lambda _column: 1 + 2 + (-MIN_NUMBER_EXPONENT - 1) + MAX_NUMBER_DIGITS + 2,
    "boolean": lambda _column: len("false"),
    "date": lambda _column: len('"2026-12-06"'),
    "datetime": lambda _column: len('"2026-12-06T15:43:50.000Z"'),
    "enum": lambda column: max(len(_json_string(value)) for value in column.values),
}
# The largest row number (ten digits, `chunks.ROW_SPACE`).
_ROW_NUMBER_BYTES = len(str(ROW_SPACE - 1))


def max_value_bytes(column: Column) -> int:
    """The most bytes a value of the column encodes to in a chunk: its type's largest, or `null`."""
    if column.type.name not in _MAX_VALUE_BYTES:
        raise ValueError(f"column type {column.type.name!r} has no largest encoded size in packing.py")
    return max(len("null"), _MAX_VALUE_BYTES[column.type.name](column))


def max_row_bytes(schema: Schema) -> int:
    """The most bytes a valid row of the schema adds to a chunk's body: `[row,v1,v2,…]` at its
    largest, and the comma that separates it from the row before. The packer closes a chunk while
    one more such row still fits, so this must fit a chunk (`row_budget_problem`)."""
    values = sum(1 + max_value_bytes(column) for column in schema.columns)  # each after a comma
    return 1 + len("[]") + _ROW_NUMBER_BYTES + values


# The envelope the plan's check assumes (`row_budget_problem`): every field at its longest for an
# ordinary upload, with an object key and a version id of 1,024 ASCII bytes, S3's most for each
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html: "a maximum length of
# 1,024 bytes"; version ids are "opaque strings that are at most 1024 bytes long",
# https://docs.aws.amazon.com/AmazonS3/latest/dev/ObjectVersioning.html). A key of characters JSON
# escapes (up to six bytes for one: `\u0001`) makes a longer one: such an upload fails its job, naming
# its key's length (`ingest._packer`), whatever the schema.
_PLAN_ENVELOPE = Chunk(
    jobId="f" * 32,
    chunk=10**9,
    uploadedAtMs=10**15 - 1,
    tiebreak="F" * 96,
    source=Source(bucket="b" * 63, key="k" * 1024, versionId="v" * 1024),
    expiresAt=2**40,
    schema="0" * 16,
    rows=(),
)


def row_budget_problem(schema: Schema, max_message_bytes: int) -> str | None:
    """Why a chunk of a queue whose messages hold `max_message_bytes` has no room for the schema's
    largest row (with an ordinary upload's envelope); None when it has. The program's plan refuses
    such a schema (infra/config.py), and the producer stops at its start with this reason."""
    room = _room(Budgets.for_queue(max_message_bytes).chunk_bytes, _PLAN_ENVELOPE)
    largest = max_row_bytes(schema)
    if largest <= room:
        return None
    return (
        f"a row of this schema encodes to up to {largest} bytes, and a chunk of a queue whose messages hold"
        f" {max_message_bytes} bytes has room for {room}: raise maxMessageBytes, or lower the text columns'"
        " maxLength"
    )


def _room(chunk_bytes: int, envelope: Encodable) -> int:
    """What a chunk's rows may take: the chunk less its envelope, and room for larger numbers than
    the envelope's."""
    return chunk_bytes - len(envelope.encode().encode()) - 32


# --- encoding ----------------------------------------------------------------------------------


class RowEncoder:
    """Rows of a schema as `Chunk.encode` writes them (`Row.to_json`: `[row,v1,v2,…]`, compact,
    ASCII), without building the `Row`s: the producer encodes each row once, as it packs it. A block
    of rows is encoded by column, each column by its type at once, then one join per row."""

    def __init__(self, schema: Schema) -> None:
        self._kinds = tuple(column.type.json_type for column in schema.columns)
        self.max_row_bytes = max_row_bytes(schema)

    def rows(self, first: int, columns: list[list[Value]]) -> list[str]:
        """The JSON of consecutive rows numbered from `first`, given by column (in the schema's order)."""
        encoded = [_json_column(values, kind) for values, kind in zip(columns, self._kinds, strict=True)]
        return [
            f"[{number},{values}]"
            for number, values in zip(count(first), map(",".join, zip(*encoded, strict=True)), strict=False)
        ]


def encode_row(number: int, values: Iterable[Value]) -> str:
    """The JSON of one row: `json.dumps([number, *values], separators=(",", ":"))`."""
    return f"[{number},{','.join(map(_json_value, values))}]"


def _json_value(value: Value) -> str:
    if type(value) is str:
        return _json_string(value)
    return _JSON_LITERALS[value] if value is None or type(value) is bool else str(value)


def _json_column(values: list[Value], kind: type) -> list[str]:
    """Each value of a column as JSON writes it; `kind` is what the column carries (`json_type`)."""
    if kind is str:
        if None in values:
            return [_JSON_LITERALS[value] if value is None else _json_string(value) for value in values]  # type: ignore[arg-type]
        return _json_strings(values)  # type: ignore[arg-type]
    if kind is bool:
        return list(map(_JSON_LITERALS.__getitem__, values))
    if None in values:
        return ["null" if value is None else str(value) for value in values]
    return list(map(str, values))


def _json_strings(values: list[str]) -> list[str]:
    """Each value as JSON writes it: a column of plain values (printable ASCII, no quote, no
    backslash: almost always) is quoted as it is, all at once; any other through json's encoder."""
    text = "".join(values)
    if values and text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return ('"' + '"\n"'.join(values) + '"').split("\n")  # no plain value holds a line end
    return list(map(_json_string, values))


def row_bytes(row: Row) -> int:
    """Exactly `len(json.dumps(row.to_json(), separators=(",", ":")))`."""
    return len(encode_row(row.row, row.values))


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
        *,
        max_row_bytes: int,
    ) -> None:
        self._make_chunk = make_chunk
        self._size_of = size_of
        self.next_chunk = next_chunk
        self._rows_per_chunk = rows_per_chunk
        self._max_row = max_row_bytes
        """The most a valid row adds to a body (`max_row_bytes` of the schema)."""
        self._room = _room(max_bytes, make_chunk(0, ()))
        if self._room < max_row_bytes:
            raise ValueError(f"max_bytes = {max_bytes} leaves no room for a row of {max_row_bytes} bytes")
        self._rows: list[RowT] = []
        self._bytes = 0
        self.empty = True
        """No rows since the last chunk closed (an attribute, not a property: read once per record)."""

    def add(self, row: RowT) -> ChunkT | None:
        """Add a row; return the chunk it completed, if it did."""
        size = self._size_of(row) + 1  # + the separating comma
        if size > self._max_row:
            raise ValueError(f"a row is {size} bytes encoded; validation caps rows at {self._max_row}")
        self._rows.append(row)
        self._bytes += size
        self.empty = False
        if len(self._rows) >= self._rows_per_chunk or self._bytes + self._max_row > self._room:
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
        if max(sizes) > self._max_row:
            raise ValueError(f"a row is {max(sizes)} bytes encoded; validation caps rows at {self._max_row}")
        totals = list(accumulate(sizes))
        # The chunk closes at the row that fills it, or after which one more row might not fit.
        by_count = self._rows_per_chunk - len(self._rows) - 1
        by_bytes = bisect_right(totals, self._room - self._max_row - self._bytes)
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
