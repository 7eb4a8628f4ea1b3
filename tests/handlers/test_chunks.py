"""The chunk message: round trip, strict decoding, version order."""

import json

import pytest

from handlers.common.chunks import Chunk, MalformedChunk, Row, Source, decode, row_version, upload_tiebreak

CHUNK = Chunk(
    "job-1",
    3,
    1_764_324_000_123,
    "0055AED6DCD90281E5" + "0" * 14 + "job-1",
    Source("bucket", "uploads/a b.csv", "v1"),
    1_766_000_000,
    (Row(1, "a@example.com", "Ann", None), Row(2, "b@example.com", "Bö", "+4412345678")),
)


def test_chunk_round_trips():
    assert decode(CHUNK.encode()) == CHUNK


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"v": 2}),
        CHUNK.encode().replace('"chunk":3', '"chunk":"3"'),
        CHUNK.encode().replace('"jobId":"job-1",', ""),
        CHUNK.encode().replace('"row":1', '"row":true'),
        json.dumps({**json.loads(CHUNK.encode()), "rows": []}),
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
