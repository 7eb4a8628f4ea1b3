"""The producer takes a block of one-line records at once (read, checked, normalised, encoded and
packed by column): every chunk, checkpoint, count and report line must be what taking each record
by itself gives. The reference run makes no block `LineRecords`, so every record goes through
`csv.reader` and the row-by-row path, over the same bytes."""

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from handlers.common.schema import DEFAULT_SCHEMA, Schema
from handlers.common.signing import JobKeys
from handlers.producer import rows
from handlers.producer.ingest import Clock, Services, Settings, run_segment
from handlers.producer.job_store import VALIDATE, Checkpoint
from handlers.producer.packing import Budgets
from tests.handlers.harness import FakeContext
from tests.handlers.producer_schemas import PRODUCTS


class MemoryS3:
    """GetObject of one object from the range's start; report parts kept as bytes."""

    def __init__(self, data: bytes) -> None:
        self.data, self.reports = data, []

    def get_object(self, *, Range: str, **_object: Any) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        return {"Body": io.BytesIO(self.data[int(Range.removeprefix("bytes=").rstrip("-")) :])}

    def put_object(self, *, Body: Any, **_object: Any) -> dict[str, Any]:  # noqa: N803
        self.reports.append(Body.read())
        return {}


class RecordingSqs:
    def __init__(self) -> None:
        self._lock, self.bodies = threading.Lock(), {}

    def send_message_batch(self, *, Entries: list[dict[str, Any]], **_queue: Any) -> dict[str, Any]:  # noqa: N803
        with self._lock:
            self.bodies.update({entry["Id"]: entry["MessageBody"] for entry in Entries})
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}


def ingest_in_segments(
    data: bytes, rows_per_message: int, step_ms: int, schema: Schema = DEFAULT_SCHEMA, key: str = "uploads/users.csv"
) -> dict[str, Any]:
    """The object `data` under `key` through `run_segment`, one invocation after another from each checkpoint."""
    s3, sqs = MemoryS3(data), RecordingSqs()
    job = {
        "jobId": "0" * 32,
        "bucket": "b",
        "key": key,
        "versionId": "v",
        "objectSize": len(data),
        "uploadedAtMs": 1_764_300_000_000,
        "checkpoint": Checkpoint(VALIDATE, 0, 0, 0, 0, 0).to_item(),
    }
    settings = Settings("q", "b", "reports/", rows_per_message, Budgets.for_queue(65_536), 1 << 40, schema)
    checkpoints = []
    with ThreadPoolExecutor(2) as executor:
        services = Services(s3, sqs, executor, JobKeys(lambda: "s" * 64))
        while True:
            # Never exactly at the margin (20.1 s), where the sends' timing (`drain_seconds`) would decide.
            clock = Clock(FakeContext(remaining_ms=100_500, step_ms=step_ms).get_remaining_time_in_millis)
            result = run_segment(job, services, settings, clock)
            checkpoints.append(result.checkpoint.to_item())
            job["checkpoint"] = checkpoints[-1]
            if result.finished:
                return {
                    "chunks": sqs.bodies,
                    "checkpoints": checkpoints,
                    "summary": result.summary,
                    "reports": s3.reports,
                }


def row(i: int) -> str:
    if i % 97 == 13:
        return f"Bad {i},not-an-email,\n"
    if i % 89 == 7:
        return ",,\n" if i % 2 else "\r\n"
    return f"User {i},User{i}@Example.com,+1555{i:07d}\r\n" if i % 5 else f"Ann {i}, ann{i}@example.com , 0{i:08d}\n"


FILES = {
    "valid rows": "name,mail,phone\n" + "".join(f"User {i},user{i}@example.com,+1555{i:07d}\n" for i in range(1500)),
    "rejects, blank lines, CRLF": "name,mail,phone\r\n" + "".join(map(row, range(1500))),
    "a quoted cell now and then": "name,mail\n"
    + "".join(f'"Doe, {i}",d{i}@example.com\n' if i % 150 == 0 else f"U {i},u{i}@example.com\n" for i in range(1500)),
    "no phone column, no last line end": "mail,name\n" + "\n".join(f"u{i}@example.com,U {i}" for i in range(1500)),
}


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize(("read_size", "span", "step_ms"), [(1 << 16, 1 << 20, 0), (700, 120, 2_000), (4096, 250, 700)])
def test_blocks_taken_at_once_give_what_records_taken_one_by_one_give(monkeypatch, name, read_size, span, step_ms):
    data = FILES[name].encode()
    monkeypatch.setattr("handlers.producer.csv_stream.READ_SIZE", read_size)
    monkeypatch.setattr("handlers.producer.ingest.MAX_CHUNK_SPAN_BYTES", span)
    at_once = ingest_in_segments(data, 7, step_ms)
    monkeypatch.setattr("handlers.producer.csv_stream._line_records", lambda *_block: None)
    one_by_one = ingest_in_segments(data, 7, step_ms)
    assert at_once == one_by_one
    assert len(at_once["checkpoints"]) > (10 if step_ms else 0), "the clock must stop segments in the blocks"


def product(i: int) -> str:
    """A products row (sku,title,price,stock,active,since,status,at) in varied spellings, now and
    then invalid (a price below 0, an unknown status, a bad date) or blank."""
    if i % 97 == 13:
        return f"P{i},Item {i},-{i}.5,1,yes,2026-01-02,live,\n"
    if i % 101 == 50:
        return f"P{i},Item {i},{i}.5,1,yes,2026-13-02,live,\n"
    if i % 89 == 7:
        return ",,,,,,,\n" if i % 2 else "\r\n"
    if i % 5:
        return f"P{i}, Item {i} ,{i}.50,+{i % 7},{'YES' if i % 2 else 'n'},,{' Live ' if i % 3 else 'draft'},\r\n"
    return f" p{i} ,Item {i},0{i},{i},TRUE,2026-01-{i % 28 + 1:02d},RETIRED,2026-12-06T15:43:5{i % 10}+01:00\n"


PRODUCT_FILES = {
    "valid products": "sku,title,price,stock,active,since,status,at\n"
    + "".join(f"P{i},Item {i},{i}.25,{i},true,2026-01-02,live,2026-12-06T15:43:50Z\n" for i in range(1500)),
    "products with rejects, blank lines, CRLF, empty optional cells": "SKU,Title,Price,Stock,Active,Since,Status,At\r\n"
    + "".join(map(product, range(1500))),
    "products, some columns absent, a quoted cell now and then": "item_code,name,price,qty\n"
    + "".join(f'P{i},"Desk, {i}",{i},{i}\n' if i % 150 == 0 else f"P{i},Desk {i},{i}.0,-{i}\n" for i in range(1500)),
}


@pytest.mark.parametrize("name", PRODUCT_FILES)
@pytest.mark.parametrize(("read_size", "span", "step_ms"), [(1 << 16, 1 << 20, 0), (700, 120, 2_000)])
def test_blocks_of_products_taken_at_once_give_what_records_taken_one_by_one_give(
    monkeypatch, name, read_size, span, step_ms
):
    data = PRODUCT_FILES[name].encode()
    monkeypatch.setattr("handlers.producer.csv_stream.READ_SIZE", read_size)
    monkeypatch.setattr("handlers.producer.ingest.MAX_CHUNK_SPAN_BYTES", span)
    by_column = []  # the rows each block taken at once held
    normalise = rows.normalized_rows

    def normalized_rows(header, cells):
        columns = normalise(header, cells)
        by_column.append(0 if columns is None else len(columns[0]))
        return columns

    monkeypatch.setattr(rows, "normalized_rows", normalized_rows)
    at_once = ingest_in_segments(data, 7, step_ms, PRODUCTS)
    monkeypatch.setattr("handlers.producer.csv_stream._line_records", lambda *_block: None)
    one_by_one = ingest_in_segments(data, 7, step_ms, PRODUCTS)
    assert at_once == one_by_one
    # A block holding a blank line or a quote is taken record by record: at 64 KiB, each of theirs does.
    if read_size < 1 << 16 or name == "valid products":
        assert sum(by_column) > 300, "rows were taken a block at a time"
    assert at_once["chunks"], "valid rows were sent"
    assert len(at_once["checkpoints"]) > (10 if step_ms else 0), "the clock must stop segments in the blocks"
