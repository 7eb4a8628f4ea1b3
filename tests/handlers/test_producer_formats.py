"""Files people have, through the producer: gzip, Windows encodings, UTF-16 and other delimiters.

A gzip, cp1252 or UTF-16 file cannot be range-read at a checkpoint (a deflate stream has no entry
point but its first byte; transcoding changes byte lengths), so a continuation reads the object
again from its first byte and skips to the checkpoint's offset, which is counted in the reader's
UTF-8 text (`handlers/producer/sources.py`). The first tests show that this resumes exactly: a file
split across many invocations gives what one invocation gives, and what the plain UTF-8 file of the
same text gives, checkpoint for checkpoint. The others run uploads through the handler on moto.
"""

import csv
import dataclasses
import gzip
import io
import itertools
from typing import Any

import pytest

from handlers.common.chunks import Row, decode
from handlers.common.schema import DEFAULT_SCHEMA, Format
from handlers.producer.csv_stream import FileProblem
from handlers.producer.job_store import INGEST, VALIDATE
from tests.handlers import test_producer_blocks
from tests.handlers.harness import Deployment, FakeContext
from tests.handlers.test_producer_blocks import ingest_in_segments
from tests.properties.test_producer import report_rows

pytestmark = pytest.mark.long(seconds=10)


def bound_segments(monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    """Each run of `ingest_in_segments` fails after `limit` invocations: a continuation that resumes at
    the wrong place (reading from the file's start again, say) may never reach the end, and would hang."""
    run_segment = test_producer_blocks.run_segment

    def bounded(job: dict[str, Any], *args: Any) -> Any:
        segment = job["checkpoint"]["segment"]
        assert segment < limit, f"no end after {limit} invocations: the chain does not advance"
        return run_segment(job, *args)

    monkeypatch.setattr(test_producer_blocks, "run_segment", bounded)


def row(i: int) -> str:
    """A row of the default schema, now and then rejected, blank, quoted over two lines, or named
    with what only some encodings hold (é, ß, €)."""
    if i % 97 == 13:
        return f"Bad {i},not-an-email,\r\n"
    if i % 89 == 7:
        return ",,\r\n" if i % 2 else "\r\n"
    if i % 151 == 3:
        return f'"Müller, {i}\r\nzweite Zeile",m{i}@example.com,+49 30 {i:07d}\r\n'
    if i % 3:
        return f"René {i},r{i}@example.com,+33 6 {i:08d}\r\n"
    return f"Straße €{i}, s{i}@Example.com ,0{i:08d}\r\n"


ROWS = 3000  # 31 of them rejected (i % 97 == 13), 34 blank (i % 89 == 7)
TEXT = "Name,E-mail,Phone Number\r\n" + "".join(map(row, range(ROWS)))
VARIANTS = {
    "gzip": ("uploads/users.csv.gz", gzip.compress(TEXT.encode(), mtime=0), DEFAULT_SCHEMA.format),
    "cp1252": ("uploads/users.csv", TEXT.encode("cp1252"), Format(encoding="cp1252")),
    "utf-16": ("uploads/users.csv", TEXT.encode("utf-16"), Format(encoding="utf-16")),
    "cp1252, gzip": ("uploads/users.csv.gz", gzip.compress(TEXT.encode("cp1252"), mtime=0), Format(encoding="cp1252")),
}


def reported(run: dict[str, Any]) -> list[list[str]]:
    """Every row of a run's rejects report parts, in order (each part's header left out)."""
    return [row for part in run["reports"] for row in list(csv.reader(io.StringIO(part.decode())))[1:]]


def without(item: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in names}


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("read_size", [None, 999])
def test_a_file_split_across_invocations_resumes_exactly_where_it_stopped(monkeypatch, name, read_size):
    key, data, fmt = VARIANTS[name]
    schema = dataclasses.replace(DEFAULT_SCHEMA, format=fmt)
    if read_size is not None:
        # An odd size splits UTF-16 code units, surrogate pairs and UTF-8 characters between reads.
        monkeypatch.setattr("handlers.producer.sources.READ_SIZE", read_size)
        monkeypatch.setattr("handlers.producer.csv_stream.READ_SIZE", read_size)
    # Chunks close every few kilobytes of text, so that where they close is in the text's coordinates too.
    monkeypatch.setattr("handlers.producer.ingest.MAX_CHUNK_SPAN_BYTES", 4096)
    bound_segments(monkeypatch, 500)  # the runs below take 84 invocations

    one = ingest_in_segments(data, 7, 0, schema, key)
    many = ingest_in_segments(data, 7, 2_000, schema, key)
    plain = ingest_in_segments(TEXT.encode(), 7, 2_000)

    phases = [cp["phase"] for cp in many["checkpoints"]]
    assert phases.count(VALIDATE) > 10 and phases.count(INGEST) > 10, "the clock stops segments in both passes"
    assert len(one["checkpoints"]) == 1
    assert many["chunks"] == one["chunks"]
    assert reported(many) == reported(one)
    # Report parts are one per segment; everything else the job ends with is the same.
    assert without(many["summary"], "checkpoint", "rejectsParts") == without(
        one["summary"], "checkpoint", "rejectsParts"
    )
    per_segment = ("segment", "rejects_parts")
    assert without(many["checkpoints"][-1], *per_segment) == without(one["checkpoints"][-1], *per_segment)

    # The plain file's: the same rows in the same chunks, and every checkpoint at the same offset.
    assert {n: decode(b).rows for n, b in many["chunks"].items()} == {
        n: decode(b).rows for n, b in plain["chunks"].items()
    }
    assert [without(cp, "format") for cp in many["checkpoints"]] == [
        without(cp, "format") for cp in plain["checkpoints"]
    ]
    assert reported(many) == reported(plain)
    summary = many["summary"]
    assert (summary["rowsValid"], summary["rowsRejected"], summary["blankLines"]) == (ROWS - 31 - 34, 31, 34)
    assert summary["format"] == {
        "gzip": key.endswith(".gz"),
        "encoding": fmt.encoding,
        "delimiter": "comma",
        "detected": True,
    }


# --- through the handler, on moto -------------------------------------------------------------------

SMALL = "Name,E-mail,Phone Number\r\n" + "".join(map(row, range(100)))  # 1 rejected row (13), 2 blank (7, 96)


def sent(deployment: Deployment) -> dict[str, list[Row]]:
    """The rows queued for each job, in chunk order."""
    rows: dict[str, list[Row]] = {}
    for chunk in sorted((decode(m["Body"]) for m in deployment.receive_all()), key=lambda c: c.chunk):
        rows.setdefault(chunk.jobId, []).extend(chunk.rows)
    return rows


def test_a_gzip_upload_is_ingested_as_its_plain_file_is(deployment):
    plain_id = deployment.upload("uploads/users.csv", SMALL)
    # Each look at the clock costs 3 s of a 100 s invocation: the job continues over several.
    invocations = itertools.count(1)

    def context() -> FakeContext:
        # A continuation that resumes at the wrong place may never reach the end: fail, not hang.
        assert next(invocations) <= 100, "no end after 100 invocations: the chain does not advance"
        return FakeContext(remaining_ms=100_000, step_ms=3_000)

    gzip_id = deployment.upload("uploads/users.csv.gz", gzip.compress(SMALL.encode()), contexts=context)
    plain, gzipped = deployment.job(plain_id), deployment.job(gzip_id)
    assert gzipped["status"] == plain["status"] == "QUEUED", gzipped.get("error")
    assert gzipped["checkpoint"]["segment"] > 3, "the job was resumed by continuations"
    counts = ("rowsTotal", "rowsValid", "rowsRejected", "blankLines", "chunksTotal")
    assert [gzipped[c] for c in counts] == [plain[c] for c in counts] == [98, 97, 1, 2, 33]
    rows = sent(deployment)
    assert rows[gzip_id] == rows[plain_id]
    assert report_rows(deployment, gzip_id) == report_rows(deployment, plain_id)
    assert gzipped["format"] == {"gzip": True, "encoding": "utf-8", "delimiter": "comma", "detected": True}


def test_a_truncated_gzip_upload_fails_and_sends_nothing(deployment):
    data = gzip.compress(TEXT.encode())
    job_id = deployment.upload("uploads/users.csv.gz", data[: len(data) // 2])
    job = deployment.job(job_id)
    assert job["status"] == "FAILED"
    assert job["error"].startswith(f"truncated gzip file: it ends after {len(data) // 2} bytes"), job["error"]
    assert deployment.receive_all() == []


def test_a_gzip_bomb_fails_at_the_decompressed_limit_and_sends_nothing(deployment):
    limit = 1024 * 1024
    deployment.producer.SETTINGS = dataclasses.replace(deployment.producer.SETTINGS, max_decompressed_bytes=limit)
    # One record of twenty million zeros: read whole, it is one oversized row, rejected in a moment.
    bomb = gzip.compress(b"name,mail\n" + b"0" * 20_000_000, compresslevel=9)
    assert len(bomb) < limit / 10, "a few kilobytes that inflate to twenty megabytes"
    job_id = deployment.upload("uploads/bomb.csv.gz", bomb)
    job = deployment.job(job_id)
    assert job["status"] == "FAILED"
    assert job["error"].startswith(
        f"the file decompresses to more than {limit} bytes (csv-ingest:maxDecompressedBytes)"
    )
    assert deployment.receive_all() == []


def test_a_cp1252_file_on_a_utf8_stack_fails_naming_the_encoding_setting(deployment):
    job_id = deployment.upload("uploads/excel.csv", "Name,Mail\r\nRené,rene@example.com\r\n".encode("cp1252"))
    job = deployment.job(job_id)
    assert job["status"] == "FAILED"
    assert "byte 0xe9" in job["error"] and "cp1252" in job["error"], job["error"]
    assert "csv-ingest:schema.format.encoding" in job["error"], job["error"]
    assert "Ren" not in job["error"], "no cell of the file"
    assert deployment.receive_all() == []


@pytest.mark.parametrize("schema", [dataclasses.replace(DEFAULT_SCHEMA, format=Format(encoding="cp1252"))])
def test_a_cp1252_stack_ingests_a_gzipped_cp1252_file(deployment):
    text = "Name;Mail\r\nRené €;rene@example.com\r\nStraße;s@example.com\r\n"
    job_id = deployment.upload("uploads/excel.csv.gz", gzip.compress(text.encode("cp1252")))
    job = deployment.job(job_id)
    assert job["status"] == "QUEUED", job.get("error")
    assert [row.values for row in sent(deployment)[job_id]] == [
        ("René €", "rene@example.com", None),
        ("Straße", "s@example.com", None),
    ]
    assert job["format"] == {"gzip": True, "encoding": "cp1252", "delimiter": "semicolon", "detected": True}


def test_a_semicolon_file_is_read_with_the_delimiter_its_header_line_shows(deployment):
    text = "Name;E-mail;Phone Number\nAnn, Jr;ann@example.com;+44 7700 900123\nBob;bob@example.com;\n"
    job_id = deployment.upload("uploads/excel.csv", text)
    job = deployment.job(job_id)
    assert job["status"] == "QUEUED", job.get("error")
    assert job["format"] == {"gzip": False, "encoding": "utf-8", "delimiter": "semicolon", "detected": True}
    assert [row.values for row in sent(deployment)[job_id]] == [
        ("Ann, Jr", "ann@example.com", "+447700900123"),
        ("Bob", "bob@example.com", None),
    ]


def test_a_resume_that_would_take_half_the_invocation_fails_the_job_instead_of_crawling(monkeypatch):
    """Re-reading a gzip file to its checkpoint costs time in proportion to the offset: when it takes
    more than half of what an invocation has, every later invocation would move the job on less and
    less, and the chain would not end. The job fails instead, naming the settings that help."""
    key, data, fmt = VARIANTS["gzip"]
    schema = dataclasses.replace(DEFAULT_SCHEMA, format=fmt)
    monkeypatch.setattr("handlers.producer.ingest.MAX_CHUNK_SPAN_BYTES", 4096)
    bound_segments(monkeypatch, 500)
    # Each look at the monotonic clock is 10 s after the last: a re-read takes 10 s, and an
    # invocation has 80.4 s before its margin (100.5 s, a fifth kept): fine.
    seconds = itertools.count(step=10)
    monkeypatch.setattr("handlers.producer.ingest.monotonic", lambda: next(seconds))
    assert ingest_in_segments(data, 7, 2_000, schema, key)["summary"]["rowsTotal"] == ROWS - 34
    # 50 s of 80.4: more than half.
    seconds = itertools.count(step=50)
    with pytest.raises(FileProblem) as refused:
        ingest_in_segments(data, 7, 2_000, schema, key)
    assert str(refused.value).startswith(
        "file too large to resume: a gzip file cannot be read from its middle, and reading it again to byte offset"
    )
    assert str(refused.value).endswith(
        " took 50 s of the 80 s this invocation had; give the producer more time or CPU"
        " (csv-ingest:producerTimeoutSeconds, csv-ingest:producerMemoryMb), or upload the file in smaller pieces"
    )
    # A plain UTF-8 file resumes with a range request: no re-read, whatever the clock says.
    assert ingest_in_segments(TEXT.encode(), 7, 2_000)["summary"]["rowsTotal"] == ROWS - 34
