"""Properties of packing rows into chunk messages (`handlers/producer/packing.py`,
`handlers/common/chunks.py`), of sending them (`handlers/producer/sender.py`) and of the worker's
reading of them (`handlers/common/chunks.decode`, `handlers/worker/admission.py`).

Rows are valid rows as the field rules make them, weighted towards the costly ones (names of
characters ASCII JSON escapes, up to the longest valid row); the envelope carries an S3 key of up
to 1,024 bytes of any characters; the queue's maximum message size is anything SQS allows.
"""

from __future__ import annotations

import json
import re
import string
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from handlers.common.chunks import MAC_ATTRIBUTE, ROW_SPACE, Chunk, Row, Source, decode, upload_tiebreak
from handlers.common.schema import DEFAULT_SCHEMA
from handlers.common.signing import JobKeys
from handlers.common.validation import MAX_EMAIL_LENGTH, MAX_NAME_LENGTH
from handlers.producer.packing import (
    API_MAX_BATCH_BYTES,
    MAX_BATCH_ENTRIES,
    Budgets,
    ChunkPacker,
    max_row_bytes,
    row_bytes,
)
from handlers.producer.sender import ChunkSender
from handlers.worker.admission import ChunkRefused, check_against_job, check_mac, check_rows
from tests.evidence import Proof
from tests.properties.test_validation import REASONS

SECTION = "Properties"
# The rows packed are the default schema's.
SCHEMA = DEFAULT_SCHEMA
# Chunks signed as the producer signs them: with the job's key derived from a stack's secret.
KEYS = JobKeys(lambda: "s" * 64)
PROOFS = [
    ROW_SIZE := Proof(
        "RELIABILITY",
        SECTION,
        "Packer: a row's encoded size",
        injected="rows of any text in every field (quotes, backslashes, controls, DEL, U+2028, astral characters)"
        " and any row number",
        held="`packing.row_bytes` equals the length of the row's compact ASCII JSON, as the chunk body writes it",
        figures={"examples": 300, "explicit examples": 1},
        test="test_row_bytes_is_the_length_of_the_rows_json",
    ),
    PACKED := Proof(
        "RELIABILITY",
        SECTION,
        "Packer: chunks, send batches and the worker's reading of them",
        injected="0–120 valid rows (up to the largest a valid row encodes to), 1–250 rows per message, any queue"
        " maximum message size SQS allows, S3 keys of up to 1,024 bytes",
        held="rows in = rows packed, in order; chunks numbered contiguously; every body ASCII JSON within the chunk"
        " budget; every message (body and MAC attribute, as SQS counts it) within the queue's maximum and no send"
        " batch over 10 entries or the batch budget; each message's MAC verified under its job's key, and its body"
        " decoded and admitted by the worker gives back its chunk",
        figures={"examples": 120, "explicit examples": 1},
        test="test_packing_then_unpacking_is_the_identity_within_sqs_limits",
    ),
    REFUSED := Proof(
        "RELIABILITY",
        SECTION,
        "Worker admission: rows not as the producer makes them",
        injected="one row of a packed chunk changed out of normal form (case, spaces, separators, empty or long"
        " name, bad address or phone, row number 0 or beyond)",
        held="the chunk is refused whole, with a reason naming chunk and row numbers and the rule, never the value",
        figures={"examples": 150},
        test="test_a_chunk_with_a_row_out_of_normal_form_is_refused",
    ),
]

# --- valid rows ---------------------------------------------------------------------------------

# The rows are the default schema's (name, mail, phone); the packer keeps room for its largest.
MAX_ROW_BYTES = max_row_bytes(DEFAULT_SCHEMA)


def user(number: int, email: str, name: str, phone: str | None) -> Row:
    """A row of the default schema, whose values are name, mail, phone in that order."""
    return Row(number, (name, email, phone))


# Built from parts rather than drawn from a regular expression: hypothesis's regex strategies are
# slow, and these rows only need to be valid and of every length.
_ALNUM = string.ascii_lowercase + string.digits
LOCAL = st.text(st.sampled_from(_ALNUM + ".!#$%&'*+/=?^_`{|}~-"), min_size=1, max_size=64)
LABEL = st.builds(
    lambda ends, inner: ends[0] + inner + ends[1:] if len(ends) > 1 else ends,
    st.text(st.sampled_from(_ALNUM), min_size=1, max_size=2),
    st.text(st.sampled_from(_ALNUM + "-"), max_size=61),
)
emails = st.builds(
    lambda local, labels: f"{local}@{'.'.join(labels)}"[:MAX_EMAIL_LENGTH],
    LOCAL,
    st.lists(LABEL, min_size=2, max_size=5),
).map(lambda email: email if email[-1].isalnum() else email.rstrip(".-") + "x")  # a cut label ends alphanumeric
# Names: any text, or text of what ASCII JSON writes longest (escaped controls, quotes, astral
# characters as two \uXXXX escapes); trimmed and cut to the rule's length, never empty.
_COSTLY = st.sampled_from(['"', "\\", "\x01", "\x1f", "\x7f", "\u2028", "\U0001f600", "\U0010fffd"])
names = (
    st.one_of(
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=MAX_NAME_LENGTH),
        st.text(_COSTLY, min_size=1, max_size=MAX_NAME_LENGTH),
        st.text(_COSTLY, min_size=MAX_NAME_LENGTH - 16, max_size=MAX_NAME_LENGTH),
    )
    .map(lambda s: s.strip()[:MAX_NAME_LENGTH])
    .filter(bool)
)
phones = st.one_of(
    st.none(), st.builds(str.__add__, st.sampled_from(["", "+"]), st.text(string.digits, min_size=6, max_size=15))
)


@st.composite
def valid_rows(draw: st.DrawFn, max_rows: int = 120) -> list[Row]:
    count = draw(st.integers(0, max_rows))
    numbers = sorted(draw(st.sets(st.integers(1, ROW_SPACE - 1), min_size=count, max_size=count)))
    return [user(number, draw(emails), draw(names), draw(phones)) for number in numbers]


LARGEST_ROW = user(
    ROW_SPACE - 1,
    f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 61}",
    "\U0001f600" * MAX_NAME_LENGTH,
    "+" + "9" * 15,
)

# --- the envelope -------------------------------------------------------------------------------

keys = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=1024).filter(
    lambda k: len(k.encode()) <= 1024
)


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A job record as the producer creates it (the fields a chunk carries and is checked against)."""
    job_id = draw(st.text("0123456789abcdef", min_size=32, max_size=32))
    return {
        "jobId": job_id,
        "bucket": draw(st.from_regex(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", fullmatch=True)),
        "key": draw(keys),
        "versionId": draw(st.text(string.ascii_letters + string.digits + "._", min_size=1, max_size=32)),
        "uploadedAtMs": draw(st.integers(0, 10**15 - 1)),
        "sequencer": draw(st.text("0123456789ABCDEF", max_size=20)),
        "expiresAt": draw(st.one_of(st.none(), st.integers(0, 2**40))),
    }


def chunk_factory(job: dict[str, Any]):
    """What `ingest._ingest` makes chunks with, for this job."""
    source = Source(job["bucket"], job["key"], job["versionId"])
    tiebreak = upload_tiebreak(job["sequencer"], job["jobId"])

    def make_chunk(number: int, rows: tuple[Row, ...]) -> Chunk:
        return Chunk(
            job["jobId"], number, job["uploadedAtMs"], tiebreak, source, job["expiresAt"], SCHEMA.fingerprint, rows
        )

    return make_chunk


# SQS's MaximumMessageSize range (SetQueueAttributes), mostly small sizes (where chunks close on
# bytes more often than on rows), from a little below the smallest this pipeline accepts.
max_message_sizes = st.one_of(
    st.integers(40_000, 120_000),
    st.integers(1024, 1024 * 1024),
    st.sampled_from([65_536, 262_144, 1024 * 1024]),
)

# --- row size -----------------------------------------------------------------------------------

any_text = st.text(st.one_of(_COSTLY, st.characters(codec="utf-8")), max_size=300)


@given(
    number=st.integers(1, ROW_SPACE - 1),
    email=any_text,
    name=any_text,
    phone=st.one_of(st.none(), any_text),
)
@example(number=LARGEST_ROW.row, email=LARGEST_ROW.values[1], name=LARGEST_ROW.values[0], phone=LARGEST_ROW.values[2])
def _row_size(number: int, email: str, name: str, phone: str | None) -> None:
    row = user(number, email, name, phone)
    assert row_bytes(row) == len(json.dumps(row.to_json(), separators=(",", ":")))


def test_row_bytes_is_the_length_of_the_rows_json(examples):
    assert examples(_row_size, ROW_SIZE) == ROW_SIZE.figures["examples"] + ROW_SIZE.figures["explicit examples"]


# --- packing, sending, unpacking ----------------------------------------------------------------


class RecordingSqs:
    """SendMessageBatch that accepts every entry and keeps each call's entries (from the send pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[list[dict[str, Any]]] = []

    def send_message_batch(self, *, Entries: list[dict[str, Any]], **_queue: Any) -> dict[str, Any]:  # noqa: N803
        with self._lock:
            self.calls.append(list(Entries))
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


def message_bytes(entry: dict[str, Any]) -> int:
    """A sent message's size as SQS counts it: its body, and each attribute's name, type and value
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_MessageAttributeValue.html)."""
    attributes = entry.get("MessageAttributes", {})
    return len(entry["MessageBody"].encode()) + sum(
        len(name.encode()) + len(value["DataType"].encode()) + len(value["StringValue"].encode())
        for name, value in attributes.items()
    )


def pack(rows: list[Row], packer: ChunkPacker) -> list[Chunk]:
    """As `_ingest` does: a chunk whenever `add` completes one, and the open one at the end."""
    chunks = [chunk for row in rows if (chunk := packer.add(row)) is not None]
    return chunks + ([last] if (last := packer.flush()) is not None else [])


@pytest.fixture(scope="module")
def executor():
    with ThreadPoolExecutor(4) as pool:
        yield pool


def test_packing_then_unpacking_is_the_identity_within_sqs_limits(examples, executor):
    @given(
        rows=valid_rows(),
        job=envelopes(),
        first_chunk=st.integers(0, 10**6),
        rows_per_chunk=st.one_of(st.integers(1, 250), st.just(250)),
        max_message_bytes=max_message_sizes,
    )
    @example(
        rows=[LARGEST_ROW] * 40,
        job={
            "jobId": "f" * 32,
            "bucket": "b" * 63,
            "key": "\U0001f600" * 256,
            "versionId": "v" * 32,
            "uploadedAtMs": 10**15 - 1,
            "sequencer": "F" * 20,
            "expiresAt": 2**40,
        },
        first_chunk=10**6,
        rows_per_chunk=250,
        max_message_bytes=1024 * 1024,
    )
    def packed(
        rows: list[Row], job: dict[str, Any], first_chunk: int, rows_per_chunk: int, max_message_bytes: int
    ) -> None:
        budgets = Budgets.for_queue(max_message_bytes)
        try:
            packer = ChunkPacker(
                chunk_factory(job), first_chunk, rows_per_chunk, budgets.chunk_bytes, max_row_bytes=MAX_ROW_BYTES
            )
        except ValueError as error:
            assert "leaves no room for a row" in str(error)
            assume(False)  # a queue too small for this pipeline: the program refuses it (config)
        assert all(row_bytes(row) + 1 <= MAX_ROW_BYTES for row in rows), "a valid row over the packer's maximum"
        chunks = pack(rows, packer)

        assert [row for chunk in chunks for row in chunk.rows] == rows
        assert [chunk.chunk for chunk in chunks] == list(range(first_chunk, first_chunk + len(chunks)))
        assert packer.next_chunk == first_chunk + len(chunks)
        assert all(0 < len(chunk.rows) <= rows_per_chunk for chunk in chunks)

        sqs = RecordingSqs()
        key = KEYS.for_job(job["jobId"])
        sender = ChunkSender(sqs, "queue", lambda: 60.0, executor, budgets.batch_bytes, mac_key=key)
        for chunk in chunks:
            sender.send(chunk)
        sender.flush()
        assert sender.sent == len(chunks)
        for call in sqs.calls:
            assert 0 < len(call) <= MAX_BATCH_ENTRIES
            assert sum(message_bytes(entry) for entry in call) <= budgets.batch_bytes
        assert budgets.batch_bytes <= min(max_message_bytes, API_MAX_BATCH_BYTES)

        entries = sorted(
            (entry for call in sqs.calls for entry in call), key=lambda entry: decode(entry["MessageBody"]).chunk
        )
        assert len(entries) == len(chunks)
        for chunk, entry in zip(chunks, entries, strict=True):
            body = entry["MessageBody"]
            assert body.isascii()
            assert len(body) <= budgets.chunk_bytes and message_bytes(entry) <= max_message_bytes
            received = decode(body)
            check_mac(received, body, entry["MessageAttributes"][MAC_ATTRIBUTE]["StringValue"], key)
            check_rows(received, SCHEMA)
            check_against_job(received, job)
            assert received == chunk

    assert examples(packed, PACKED) == PACKED.figures["examples"] + PACKED.figures["explicit examples"]


# --- the worker's refusals ----------------------------------------------------------------------

# Ways a row can differ from what the producer makes of a valid one.
NAME, MAIL, PHONE = range(3)


def changed(row: Row, position: int, change: Callable[[Any], Any]) -> Row:
    """The row with its value at `position` changed."""
    values = list(row.values)
    values[position] = change(values[position])
    return Row(row.row, tuple(values))


TAMPERINGS = {
    "email upper case": lambda row: changed(row, MAIL, str.upper),
    "email padded": lambda row: changed(row, MAIL, lambda email: f" {email}"),
    "email without domain dot": lambda row: changed(row, MAIL, lambda email: email.split("@")[0] + "@localhost"),
    "name padded": lambda row: changed(row, NAME, lambda name: f"{name}\t"),
    "name empty": lambda row: changed(row, NAME, lambda _name: ""),
    "name too long": lambda row: changed(row, NAME, lambda _name: "n" * (MAX_NAME_LENGTH + 1)),
    "phone with separators": lambda row: changed(row, PHONE, lambda _phone: "(555) 123-4567"),
    "phone too short": lambda row: changed(row, PHONE, lambda _phone: "12345"),
    "phone empty string": lambda row: changed(row, PHONE, lambda _phone: ""),
    "row number zero": lambda row: Row(0, row.values),
    "row number beyond": lambda row: Row(ROW_SPACE, row.values),
}
# Every reason admission gives for a row: numbers and fixed words, or a field rule's fixed sentence.
REFUSAL = re.compile(
    rf"chunk \d+: (row \d+ has a row number outside 1\.\.\d+"
    rf"|row \d+: ((name|mail|phone) is not in normalised form|{REASONS.pattern}))"
)


REFUSED_JOB = {
    "jobId": "0" * 32,
    "bucket": "uploads",
    "key": "uploads/users.csv",
    "versionId": "1",
    "uploadedAtMs": 1_764_300_000_000,
    "sequencer": "",
    "expiresAt": None,
}


@given(rows=valid_rows(max_rows=20).filter(bool), data=st.data())
def _refused(rows: list[Row], data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(rows) - 1))
    tampering = data.draw(st.sampled_from(sorted(TAMPERINGS)))
    changed = list(rows)
    changed[position] = TAMPERINGS[tampering](rows[position])
    assume(changed[position] != rows[position])  # e.g. upper case of an address without letters
    chunk = chunk_factory(REFUSED_JOB)(0, tuple(changed))
    with pytest.raises(ChunkRefused) as refused:
        check_rows(decode(chunk.encode()), SCHEMA)
    reason = str(refused.value)
    assert REFUSAL.fullmatch(reason), reason


def test_a_chunk_with_a_row_out_of_normal_form_is_refused(examples):
    assert examples(_refused, REFUSED) == REFUSED.figures["examples"]
