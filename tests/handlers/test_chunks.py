"""The chunk message: round trip, strict decoding, version order."""

import json
from dataclasses import replace

import pytest

from handlers.common.chunks import (
    MAC_ATTRIBUTE_BYTES,
    Chunk,
    MalformedChunk,
    Row,
    Source,
    decode,
    mac_attributes,
    row_version,
    sign,
    upload_tiebreak,
    verify_mac,
)
from handlers.common.schema import DEFAULT_SCHEMA

CHUNK = Chunk(
    "job-1",
    3,
    1_764_324_000_123,
    "0055AED6DCD90281E5" + "0" * 14 + "job-1",
    Source("bucket", "uploads/a b.csv", "v1"),
    1_766_000_000,
    DEFAULT_SCHEMA.fingerprint,
    # The default schema's columns: name, mail, phone.
    (Row(1, ("Ann", "a@example.com", None)), Row(2, ("Bö", "b@example.com", "+4412345678"))),
)


def test_chunk_round_trips():
    assert decode(CHUNK.encode()) == CHUNK


def test_rows_are_arrays_of_typed_values_and_round_trip_with_their_types():
    typed = replace(CHUNK, rows=(Row(7, ("A-1", "12.5", 3, True, None)), Row(8, ("B", "0", -1, False, "x"))))
    body = typed.encode()
    assert '"rows":[[7,"A-1","12.5",3,true,null],[8,"B","0",-1,false,"x"]]' in body
    assert decode(body) == typed
    assert [type(value) for value in decode(body).rows[0].values] == [str, str, int, bool, type(None)]


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"v": 2}),
        CHUNK.encode().replace('"chunk":3', '"chunk":"3"'),
        CHUNK.encode().replace('"jobId":"job-1",', ""),
        CHUNK.encode().replace('[1,"Ann"', '[true,"Ann"'),
        json.dumps({**json.loads(CHUNK.encode()), "rows": [{"row": 1, "email": "a@example.com", "name": "Ann"}]}),
        CHUNK.encode().replace('"Ann"', "1.5"),
        CHUNK.encode().replace('"Ann"', '["Ann"]'),
        CHUNK.encode().replace(f',"schema":"{DEFAULT_SCHEMA.fingerprint}"', ""),
        json.dumps({**json.loads(CHUNK.encode()), "rows": []}),
        json.dumps({**json.loads(CHUNK.encode()), "rows": [[]]}),
        json.dumps({**json.loads(CHUNK.encode()), "v": 1}),
    ],
)
def test_anything_else_is_malformed(body):
    with pytest.raises(MalformedChunk):
        decode(body)


def test_later_uploads_win_then_later_rows():
    tie = upload_tiebreak("", "a" * 32)
    assert row_version(1000, tie, 9_999_999_999) < row_version(1001, tie, 1)
    assert row_version(999, tie, 1) < row_version(1000, tie, 1), "numbers, not digits, compare"
    assert row_version(1000, tie, 2) > row_version(1000, tie, 1)
    with pytest.raises(ValueError):
        row_version(1000, tie, 0)


def test_same_millisecond_uploads_are_ordered_by_sequencer_then_job_id():
    # S3 compares sequencers of one key after right-padding the shorter with zeros.
    earlier, later = upload_tiebreak("0055AED6DCD90281E5", "f" * 32), upload_tiebreak("0055AED6DCD90281E6", "0" * 32)
    assert row_version(1000, earlier, 5) < row_version(1000, later, 1)
    assert upload_tiebreak("0A", "0" * 32) > upload_tiebreak("09FF", "0" * 32)
    assert upload_tiebreak("", "1" * 32) > upload_tiebreak("", "0" * 32)


# --- the MAC: a chunk is the producer's only if its body is signed with its job's key ------------

KEY = bytes(range(32))


def test_a_body_verifies_with_the_mac_its_jobs_key_made():
    body = CHUNK.encode()
    assert verify_mac(body, sign(body, KEY), KEY)


@pytest.mark.parametrize(
    ("body", "key", "why"),
    [
        (CHUNK.encode().replace('"Ann"', '"Bob"'), KEY, "one row changed"),
        (CHUNK.encode() + " ", KEY, "one byte added"),
        (CHUNK.encode(), bytes(32), "another job's key"),
    ],
)
def test_a_mac_does_not_verify_another_body_or_under_another_key(body, key, why):
    assert not verify_mac(body, sign(CHUNK.encode(), KEY), key), why


@pytest.mark.parametrize("mac", [None, "", "0" * 64, "é" * 64, sign(CHUNK.encode(), KEY).upper()])
def test_a_missing_or_made_up_mac_does_not_verify(mac):
    assert not verify_mac(CHUNK.encode(), mac, KEY)


def test_the_mac_travels_as_a_string_attribute_whose_size_is_counted():
    mac = sign(CHUNK.encode(), KEY)
    attributes = mac_attributes(mac)
    [(name, value)] = attributes.items()
    assert value == {"DataType": "String", "StringValue": mac}
    # SQS counts an attribute's name, type and value towards the message's size.
    assert len(name) + len(value["DataType"]) + len(value["StringValue"].encode()) == MAC_ATTRIBUTE_BYTES
