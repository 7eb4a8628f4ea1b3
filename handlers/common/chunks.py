"""The message between producer and worker: one chunk of valid rows of one upload.

Body (JSON, compact)::

    {"v": 2, "jobId": "…", "chunk": 0, "uploadedAtMs": 1764300000123, "tiebreak": "0055AED6…",
     "source": {"bucket": "…", "key": "uploads/users.csv", "versionId": "…"},
     "expiresAt": 1766892000 | null, "schema": "6a04a276f87e72d5",
     "rows": [[1, "John Doe", "john@gmail.com", "9876543210" | null], …]}

A row is its number, then its values in the order the schema declares its columns, each as the
column's type carries it (`handlers/common/schema.py`: text for most, a JSON number for an integer,
true or false for a boolean, null for an empty optional cell). `schema` is the fingerprint of the
schema the producer read the file with (`Schema.fingerprint`): the worker writes only chunks of its
own schema. A row's number is the data row's number in its file (1 = first row after the header). A row's version is
(upload time, tiebreak, row number), as one fixed-width string: the worker never lets a lower
version replace a higher one. `tiebreak` orders two uploads of the same millisecond: S3's
`sequencer` (which orders events on one key) then the job id, so the outcome never depends on
the order chunks are delivered in.

Signed: the message carries one attribute, `chunkMac` (String): the hex HMAC-SHA256 of the body's
exact bytes under its job's key, HMAC-SHA256(the stack's signing secret, jobId)
(`handlers/common/signing.py`). Only the producer's and the worker's roles (and the deployers) may
read the secret, and the key is stored nowhere: not on the job record, in its index or in a backup.
Everything else a chunk carries is public or derivable (`GET /jobs/{id}` shows the upload time,
sequencer and version): a principal able to put a message on the queue's way (the DLQ and a
redrive, or a direct invocation of the worker) could copy a real job's fields and write rows no
upload held. The MAC makes a chunk the producer's: the worker checks it before anything else, so a
chunk without one, with one made under any other key, or with a body changed by a byte is refused
whole. One HMAC per chunk, whatever its rows; a redelivered or redriven chunk keeps its attribute,
and so its MAC.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from handlers.common.schema import Value

FORMAT_VERSION = 2
# Rows per file are numbered below this (ten digits in a version).
ROW_SPACE = 10_000_000_000


# The message attribute that carries the MAC. SQS counts an attribute's name, type and value towards
# the message's size ("All parts of the message attribute, including Name, Type, and Value, are part
# of the message size restriction",
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_MessageAttributeValue.html):
# the producer's budgets leave room for these bytes.
MAC_ATTRIBUTE = "chunkMac"
_MAC_DATA_TYPE = "String"
MAC_ATTRIBUTE_BYTES = len(MAC_ATTRIBUTE) + len(_MAC_DATA_TYPE) + 2 * hashlib.sha256().digest_size


class MalformedChunk(ValueError):
    """A message body that is not a chunk of this format."""


@dataclass(frozen=True)
class Row:
    """A valid, normalised row: its number and its values, in the schema's order of columns."""

    row: int
    values: tuple[Value, ...]

    def to_json(self) -> list[Any]:
        return [self.row, *self.values]


@dataclass(frozen=True)
class Source:
    """The uploaded object version a chunk comes from."""

    bucket: str
    key: str
    versionId: str  # noqa: N815 (wire name)


@dataclass(frozen=True)
class Chunk:
    """Rows `chunk` of job `jobId`."""

    jobId: str  # noqa: N815 (wire name)
    chunk: int
    uploadedAtMs: int  # noqa: N815 (wire name)
    tiebreak: str
    source: Source
    expiresAt: int | None  # noqa: N815 (wire name)
    schema: str
    """The fingerprint of the schema its rows were read with."""
    rows: tuple[Row, ...]

    def encode(self) -> str:
        # Built by hand rather than with dataclasses.asdict: this runs for every chunk, and asdict
        # deep-copies each row (slower, and its garbage outlives it until a full collection).
        body = {
            "v": FORMAT_VERSION,
            "jobId": self.jobId,
            "chunk": self.chunk,
            "uploadedAtMs": self.uploadedAtMs,
            "tiebreak": self.tiebreak,
            "source": {"bucket": self.source.bucket, "key": self.source.key, "versionId": self.source.versionId},
            "expiresAt": self.expiresAt,
            "schema": self.schema,
            "rows": [row.to_json() for row in self.rows],
        }
        # ASCII only: SQS refuses characters outside XML 1.0 (U+FFFE, U+FFFF, most controls) that a
        # valid UTF-8 name may hold; escaped, every character travels.
        return json.dumps(body, separators=(",", ":"))

    def version_of(self, row: Row) -> str:
        """The row's version: later uploads win, and within a file later rows win."""
        return row_version(self.uploadedAtMs, self.tiebreak, row.row)


def sign(body: str, key: bytes) -> str:
    """The MAC of a message body (its UTF-8 bytes, as SQS delivers them) under its job's key."""
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def verify_mac(body: str, mac: str | None, key: bytes) -> bool:
    """Whether `mac` is the body's MAC under `key`, compared in constant time."""
    if mac is None:
        return False
    # As bytes: compare_digest refuses str holding non-ASCII characters, which a forger may send.
    return hmac.compare_digest(sign(body, key).encode(), mac.encode())


def mac_attributes(mac: str) -> dict[str, dict[str, str]]:
    """The `MessageAttributes` of a send that carry `mac`."""
    return {MAC_ATTRIBUTE: {"DataType": _MAC_DATA_TYPE, "StringValue": mac}}


def upload_tiebreak(sequencer: str, job_id: str) -> str:
    """Orders uploads of the same millisecond. S3 compares sequencers right-padded with zeros."""
    return f"{sequencer.upper():0<32}{job_id}"


def row_version(uploaded_at_ms: int, tiebreak: str, row: int) -> str:
    """A string that compares (byte-wise, as DynamoDB compares strings) like the tuple."""
    if not 0 < row < ROW_SPACE:
        raise ValueError(f"row number {row} outside 1..{ROW_SPACE - 1}")
    return f"{uploaded_at_ms:015d}:{tiebreak}:{row:010d}"


def versions_after(uploaded_at_ms: int) -> str:
    """A string that every version of an upload later than `uploaded_at_ms` compares above, and every
    version of that time or earlier below: the time's 15 digits, then `;`, the character after the
    `:` that ends a version's time."""
    return f"{uploaded_at_ms:015d};"


def decode(body: str) -> Chunk:
    """Parse and check a message body; `MalformedChunk` says what is wrong."""
    try:
        data = json.loads(body)
    except (TypeError, ValueError) as error:
        raise MalformedChunk(f"body is not JSON: {error}") from None
    if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
        raise MalformedChunk(f"body is not a chunk of format version {FORMAT_VERSION}")
    try:
        chunk = Chunk(
            jobId=_typed(data, "jobId", str),
            chunk=_typed(data, "chunk", int),
            uploadedAtMs=_typed(data, "uploadedAtMs", int),
            tiebreak=_typed(data, "tiebreak", str),
            source=Source(**{k: _typed(data["source"], k, str) for k in ("bucket", "key", "versionId")}),
            expiresAt=data["expiresAt"] if data.get("expiresAt") is None else _typed(data, "expiresAt", int),
            schema=_typed(data, "schema", str),
            rows=tuple(_row(r) for r in data["rows"]),
        )
    except (KeyError, TypeError) as error:
        raise MalformedChunk(f"chunk field missing or of the wrong type: {error}") from None
    if not chunk.rows:
        raise MalformedChunk("chunk has no rows")
    return chunk


def _row(data: Any) -> Row:
    if not isinstance(data, list) or not data:
        raise TypeError("rows")
    values = tuple(data[1:])
    if not all(value is None or type(value) in _VALUE_TYPES for value in values):
        raise TypeError("rows")
    return Row(row=_typed(data, 0, int), values=values)


# What a value may be in JSON, exactly (a bool is no int here): text, a whole number, true or false.
_VALUE_TYPES = (str, int, bool)


def _typed(data: Any, key: str | int, kind: type) -> Any:
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(key)
    return value
