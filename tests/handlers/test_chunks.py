"""The chunk message: round trip, strict decoding, version order."""

import json

import pytest

from handlers.common.chunks import Chunk, MalformedChunk, Row, Source, decode, row_version

CHUNK = Chunk(
    "job-1",
    3,
    1_764_324_000_123,
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
    assert row_version(1000, 999_999_999) < row_version(1001, 1)
    assert row_version(1000, 2) > row_version(1000, 1)
    with pytest.raises(ValueError):
        row_version(1000, 0)
