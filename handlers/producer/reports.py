"""The rejects report: every row not ingested, with its number and reason, as CSV in the bucket.

A report row keeps what someone fixing the file needs and no more: the row and line numbers, the
reason, and the row's cells of the schema's columns the file has (name, mail, phone for the default
schema), in the schema's order and headed as the file spells them, each cut to `MAX_REPORT_CELL`
characters. Ignored columns are left out: an upload's other columns (an `ssn`, notes) never get
copied anywhere.
"""

from __future__ import annotations

import csv
import io
import tempfile
import unicodedata
from typing import Any

from handlers.producer.rows import Header, Rejected

# A report part this large ends the invocation's segment (at the next chunk boundary), so /tmp
# (512 MB by default) never fills, however many rows a file rejects.
MAX_PART_BYTES = 64 * 1024 * 1024
# Longer cells are cut: a valid cell of the default schema is at most 256 characters, so this shows
# why one is not (a text column declared longer shows its first 512 and its length).
MAX_REPORT_CELL = 512
# Characters that start a formula in a spreadsheet (OWASP "CSV injection"), after width folding.
_FORMULA_STARTS = frozenset("=+-@")


def neutralise(cell: str) -> str:
    """Prefix a would-be formula with `'` so a spreadsheet shows it as text.

    Spreadsheets skip leading blanks and invisible characters and read full-width signs as
    signs, so a cell is a would-be formula if it starts with a tab, CR or LF, or if its first
    character after any whitespace and format characters (zero-width space, BOM, …) is `=`, `+`,
    `-` or `@` in any width.
    """
    if cell[:1] in ("\t", "\r", "\n"):
        return f"'{cell}"
    for character in cell:
        if character.isspace() or unicodedata.category(character) == "Cf":
            continue
        return f"'{cell}" if unicodedata.normalize("NFKC", character)[:1] in _FORMULA_STARTS else cell
    return cell


def _shown(cell: str) -> str:
    """A cell as the report shows it: cut to `MAX_REPORT_CELL` characters, formulas neutralised."""
    if len(cell) > MAX_REPORT_CELL:
        cell = f"{cell[:MAX_REPORT_CELL]}… [cut: {len(cell)} characters]"
    return neutralise(cell)


def report_prefix(reports_prefix: str, job_id: str) -> str:
    return f"{reports_prefix}{job_id}/"


def part_key(reports_prefix: str, job_id: str, part: int) -> str:
    """One part per producer invocation that rejected rows: a resumed invocation rewrites its own part."""
    return f"{report_prefix(reports_prefix, job_id)}rejects-{part:04d}.csv"


class RejectsReport:
    """Rejected rows of one producer invocation, written to a temporary file (Lambda's /tmp), so
    memory does not grow with the number of rejects."""

    def __init__(self, header: Header) -> None:
        self._file = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115 (closed by close())
        self._text = io.TextIOWrapper(self._file, encoding="utf-8", newline="", write_through=True)
        self._writer = csv.writer(self._text)
        self._positions = header.known  # the schema's columns, in its order
        self._writer.writerow(["row", "line", "reason", *(_shown(header.columns[i]) for i in self._positions)])
        self.count = 0

    def add(self, rejected: Rejected) -> None:
        fields = rejected.fields
        cells = [_shown(fields[i]) if i < len(fields) else "" for i in self._positions]
        self._writer.writerow([rejected.row, rejected.line, rejected.reason, *cells])
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
