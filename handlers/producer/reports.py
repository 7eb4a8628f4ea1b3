"""The rejects report: every row not ingested, with its number and reason, as CSV in the bucket."""

from __future__ import annotations

import csv
import io
import tempfile
from typing import Any

from handlers.producer.rows import Rejected

# A report part this large ends the invocation's segment (at the next chunk boundary), so /tmp
# (512 MB by default) never fills, however many rows a file rejects.
MAX_PART_BYTES = 64 * 1024 * 1024
# Cells a spreadsheet would evaluate as a formula (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """Prefix a would-be formula with `'` so a spreadsheet shows it as text."""
    return f"'{cell}" if cell.startswith(_FORMULA_STARTS) else cell


def report_prefix(reports_prefix: str, job_id: str) -> str:
    return f"{reports_prefix}{job_id}/"


def part_key(reports_prefix: str, job_id: str, part: int) -> str:
    """One part per producer invocation that rejected rows: a resumed invocation rewrites its own part."""
    return f"{report_prefix(reports_prefix, job_id)}rejects-{part:04d}.csv"


class RejectsReport:
    """Rejected rows of one producer invocation, written to a temporary file (Lambda's /tmp), so
    memory does not grow with the number of rejects."""

    def __init__(self, columns: tuple[str, ...]) -> None:
        self._file = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (closed by close())
        self._text = io.TextIOWrapper(self._file, encoding="utf-8", newline="", write_through=True)
        self._writer = csv.writer(self._text)
        self._writer.writerow(["row", "line", "reason", *(neutralise(c) for c in columns)])
        self.count = 0

    def add(self, rejected: Rejected) -> None:
        self._writer.writerow([rejected.row, rejected.line, rejected.reason, *map(neutralise, rejected.fields)])
        self.count += 1

    @property
    def full(self) -> bool:
        return self._file.tell() >= MAX_PART_BYTES

    def upload(self, s3: Any, bucket: str, key: str) -> None:
        """Write the report to `s3://bucket/key` and release its buffer."""
        self._text.flush()
        self._file.seek(0)
        s3.put_object(Bucket=bucket, Key=key, Body=self._file, ContentType="text/csv; charset=utf-8")
        self.close()

    def close(self) -> None:
        self._text.close()
