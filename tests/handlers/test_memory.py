"""The producer streams: its peak memory does not grow with the file.

Measured with tracemalloc over the producer's real ingest path (both passes: validation, then
parsing, validating, packing, sending and the rejects report). S3 and SQS are stand-ins here
that generate and discard bytes, because moto keeps every object and message in this same
process and would be measured instead of the producer.
"""

import gc
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

from handlers.common.signing import JobKeys
from handlers.producer.ingest import Clock, Services, Settings, run_segment
from handlers.producer.job_store import Checkpoint
from handlers.producer.packing import Budgets

HEADER = b"name,mail,phone\n"
ROW_BYTES = len(b"User 00000000,user00000000@example.com,+15550000000\n")


def row(i: int) -> bytes:
    at = "#" if i % 50 == 0 else "@"  # every 50th row is rejected (same width, so offsets are computable)
    return f"User {i:08d},user{i:08d}{at}example.com,+1555{i % 10_000_000:07d}\n".encode()


class GeneratedObject:
    """An object of `rows` rows, read from any offset, produced as it is read."""

    def __init__(self, rows: int, offset: int) -> None:
        self._rows, self._offset, self._pending = rows, offset, b""
        self._next = 0 if offset < len(HEADER) else (offset - len(HEADER)) // ROW_BYTES
        if offset < len(HEADER):
            self._pending = HEADER[offset:]

    def read(self, size: int = -1) -> bytes:
        while len(self._pending) < size and self._next < self._rows:
            self._pending += b"".join(row(i) for i in range(self._next, min(self._next + 512, self._rows)))
            self._next = min(self._next + 512, self._rows)
        out, self._pending = self._pending[:size], self._pending[size:]
        return out


class StandInS3:
    def __init__(self, rows: int) -> None:
        self.rows, self.report_bytes = rows, 0

    def get_object(self, Range: str, **_ignored):  # noqa: N803 (boto3's argument name)
        return {"Body": GeneratedObject(self.rows, int(Range.removeprefix("bytes=").rstrip("-")))}

    def put_object(self, Body, **_ignored):  # noqa: N803
        while chunk := Body.read(65536):
            self.report_bytes += len(chunk)


class DiscardingSqs:
    def __init__(self) -> None:
        self.messages = 0

    def send_message_batch(self, Entries, **_ignored):  # noqa: N803
        self.messages += len(Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def ingest(rows: int, executor: ThreadPoolExecutor) -> tuple[int, int]:
    """Run a whole file through the producer; return (peak traced bytes above the start, messages)."""
    s3, sqs = StandInS3(rows), DiscardingSqs()
    job = {
        "jobId": "job",
        "bucket": "b",
        "key": "uploads/big.csv",
        "versionId": "v",
        "uploadedAtMs": 1,
        "objectSize": len(HEADER) + rows * ROW_BYTES,
        "checkpoint": Checkpoint("VALIDATE", 0, 0, 0, 0, 0).to_item(),
    }
    settings = Settings(
        queue_url="q",
        upload_bucket="b",
        reports_prefix="reports/",
        rows_per_message=100,
        budgets=Budgets.for_queue(1024 * 1024),
        max_upload_bytes=1 << 40,
    )
    gc.collect()  # both runs start from the same heap: no garbage left over from the one before
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]
    result = run_segment(job, Services(s3, sqs, executor, JobKeys(lambda: "s" * 64)), settings, Clock(lambda: 900_000))
    peak = tracemalloc.get_traced_memory()[1] - start
    assert result.finished and result.checkpoint.rows_valid == rows - len(range(0, rows, 50))
    assert s3.report_bytes > 0
    return peak, sqs.messages


def test_peak_memory_for_100k_rows_is_within_20_percent_of_10k():
    with ThreadPoolExecutor(4) as executor:
        tracemalloc.start()
        try:
            ingest(1_000, executor)  # warm-up: imports, thread start-up, caches
            small, small_messages = ingest(10_000, executor)
            large, large_messages = ingest(100_000, executor)
        finally:
            tracemalloc.stop()
    assert large_messages > 9 * small_messages
    assert large <= 1.2 * small, f"peak {large / 1e6:.2f} MB for 100k rows vs {small / 1e6:.2f} MB for 10k"
