"""The gzip uploads benchmark: its file is a real gzip of its text, and a tiny run reads and renders."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from bench.core import Context
from bench.gzip_uploads import BENCHMARK, Users


def test_the_benchmarks_gzip_file_is_one_member_that_gzip_reads_as_its_text() -> None:
    users = Users(b"name,mail,phone\n", b"Ada Lovelace,ada@example.com,+442012345678\n" * 1000, copies=3)

    compressed = users.gzipped()

    assert gzip.decompress(compressed) == users.text()  # the trailer's CRC-32 and size checked
    member = zlib.decompressobj(wbits=31)  # one gzip member, ending where the file ends
    assert member.decompress(compressed) == users.text() and member.eof and not member.unused_data
    assert len(compressed) < users.size / 10


def test_a_tiny_run_reads_the_same_records_both_ways_and_renders(tmp_path: Path) -> None:
    result = BENCHMARK.run(Context(scale="tiny", work=tmp_path))

    assert result["bytes"] > 2**19 and 0 < result["compressed_bytes"] < result["bytes"]
    assert result["records"] > 2**20 // 100  # every row, from both files alike (the run checks they agree)
    for timing in (result["skip"], result["read_gzip"], result["read_plain"]):
        assert timing["cpu_seconds"] > 0 and timing["wall_seconds"] > 0
    text = BENCHMARK.render(result)
    assert "inflate and skip the whole file" in text and "compression ratio" in text
