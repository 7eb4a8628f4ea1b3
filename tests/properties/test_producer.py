"""End to end at handler level: whole generated CSV files through the producer (the handler tests'
moto harness: S3 event, both passes, continuations, SendMessageBatch into the queue), checked
against what the file was built to hold.

Each file is written by `csv.writer` from rows of known kinds — valid rows in any spelling (case,
spaces, phone separators, cells with commas, quotes and line ends), blank records, and rows each
invalid for one documented reason — under a header with its columns in any order and spelling. The
expected outcome comes from how each row was built, not from the code under test: the rows sent in
chunks are exactly the valid rows, normalised, numbered as the file numbers them; every other row is
in the rejects report with its line and reason; and the job's counts add up.
"""

from __future__ import annotations

import csv
import io
import itertools
import string
from dataclasses import dataclass, field
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

from handlers.common.chunks import Row, decode
from handlers.producer import csv_stream
from handlers.producer.csv_stream import BOM
from tests.evidence import Proof
from tests.handlers.harness import Deployment, FakeContext
from tests.properties.test_csv_reader import write_record

PROOFS = [
    END_TO_END := Proof(
        "RELIABILITY",
        "Properties",
        "Producer: whole generated files, read, validated, packed and sent",
        injected="files of 0–40 rows of valid, blank and invalid kinds (width, name, mail, phone, record over the"
        " limit), any header order and spelling, BOM or not, CRLF, LF or CR, 1–40 rows per message, in one invocation"
        " or a chain of short ones",
        held="rows in = rows sent in chunks + rows rejected; the rows sent are exactly the valid rows, normalised,"
        " with their row numbers; every rejected row is reported with its line and reason; chunks numbered 0..n-1",
        figures={"examples": 40},
        test="test_rows_in_are_rows_sent_plus_rows_rejected_for_any_file",
    ),
]

# A record over this is rejected unread; lowered from 1 MiB so that a file can hold one cheaply.
RECORD_LIMIT = 2048
REASONS = {
    "width": "fields; the header has",
    "empty name": "name is empty",
    "long name": "characters long; at most 256 allowed",
    "bad mail": "mail is not a valid email address",
    "empty mail": "mail is empty",
    "bad phone": "phone is not an optional '+' and 6 to 15 digits",
    "oversized": f"records over {csv_stream.MAX_RECORD_BYTES} bytes are not read",
}


@dataclass(frozen=True)
class Header:
    """Where each column is; `cells` as the header row spells them."""

    cells: list[str]
    name: int
    mail: int
    phone: int | None


@dataclass
class Built:
    """A file, and what the producer must make of it."""

    data: bytes
    sent: list[Row] = field(default_factory=list)
    rejected: list[tuple[int, int, str]] = field(default_factory=list)
    """(row, line, reason fragment) of each rejected row, in file order."""
    blank: int = 0

    @property
    def rows(self) -> int:
        return len(self.sent) + len(self.rejected)


@st.composite
def headers(draw: st.DrawFn) -> Header:
    def spelled(word: str) -> str:
        return draw(st.sampled_from(["", " "])) + draw(st.sampled_from([word, word.upper(), word.title()]))

    columns = ["name", "mail"] + (["phone"] if draw(st.booleans()) else [])
    columns += draw(st.lists(st.sampled_from(["notes", "id", "ssn"]), max_size=2, unique=True))
    columns = draw(st.permutations(columns))
    cells = [spelled("email" if c == "mail" and draw(st.booleans()) else c) for c in columns]
    phone = columns.index("phone") if "phone" in columns else None
    return Header(cells, columns.index("name"), columns.index("mail"), phone)


# Cell text: anything a UTF-8 file holds but NUL, weighted towards what CSV must quote.
_PIECES = st.one_of(
    st.sampled_from([",", '"', "\r", "\n", "\r\n", " ", "é", "😀"]),
    st.characters(codec="utf-8", exclude_characters="\x00"),
)
text = st.lists(_PIECES, max_size=12).map("".join)
names = text.map(str.strip).filter(bool)
_ALNUM = string.ascii_lowercase + string.digits
emails = st.builds(
    lambda local, host, tld: f"{local}@{host}.{tld}",
    st.text(st.sampled_from(_ALNUM + ".+_-"), min_size=1, max_size=12),
    st.text(st.sampled_from(_ALNUM), min_size=1, max_size=12),
    st.sampled_from(["com", "co.uk", "example", "io"]),
)
phones = st.builds(
    lambda plus, digits, separator: plus + separator.join(digits[i : i + 3] for i in range(0, len(digits), 3)),
    st.sampled_from(["", "+"]),
    st.text(st.sampled_from(string.digits), min_size=6, max_size=15),
    st.sampled_from(["", " ", "-", "."]),
)
spaces = st.sampled_from(["", " ", "\t", "  "])
KINDS = ["valid", "valid", "valid", "blank", "width", "empty name", "long name", "bad mail", "bad phone", "oversized"]


@st.composite
def files(draw: st.DrawFn) -> Built:
    header = draw(headers())
    eol = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    bom = draw(st.sampled_from([b"", BOM]))
    count = draw(st.integers(0, 40))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=count, max_size=count))
    built = Built(b"")
    records: list[list[str]] = [header.cells]
    row = 0
    for kind in kinds:
        if kind == "bad phone" and header.phone is None:
            kind = "bad mail"
        cells = [draw(text) for _ in header.cells]
        name, mail, phone = draw(names), draw(emails), draw(phones) if header.phone is not None else None
        cells[header.name] = draw(spaces) + name + draw(spaces)
        cells[header.mail] = draw(spaces) + draw(st.sampled_from([mail, mail.upper(), mail.title()])) + draw(spaces)
        if header.phone is not None:
            cells[header.phone] = draw(st.sampled_from([phone, ""]))
        if kind == "blank":
            cells = draw(st.sampled_from([[], [""] * len(header.cells)]))
        elif kind == "width":
            cells = [*cells, draw(text)] if draw(st.booleans()) or len(cells) < 3 else cells[:-1]
        elif kind == "empty name":
            cells[header.name] = draw(spaces)
        elif kind == "long name":
            cells[header.name] = "n" * draw(st.integers(257, 300))
        elif kind == "bad mail":
            cells[header.mail] = draw(st.sampled_from([mail.replace("@", " at "), mail.split(".")[0], ""]))
            kind = "bad mail" if cells[header.mail] else "empty mail"
        elif kind == "bad phone":
            cells[header.phone] = draw(st.sampled_from(["12345", "1234567890123456", "1-800-FLOWERS", "++123456"]))
        elif kind == "oversized":
            cells[header.name] = "n" * (RECORD_LIMIT + 1)
        records.append(cells)
        if kind == "blank":
            built.blank += 1
            continue
        row += 1
        if kind == "valid":
            normalised_phone = phone.replace(" ", "").replace("-", "").replace(".", "") if phone else None
            if header.phone is not None and cells[header.phone] == "":
                normalised_phone = None
            built.sent.append(Row(row, (name, mail.lower(), normalised_phone)))  # the default schema's order
        else:
            built.rejected.append((row, 0, REASONS[kind]))  # line filled in below
    # csv.writer leaves a CR or an LF unquoted when the line end is not made of it: quote them all.
    unquoted_end = any(end in cell for end in "\r\n" if end not in eol for record in records for cell in record)
    quoting = csv.QUOTE_ALL if unquoted_end else draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    pieces = [write_record(record, eol, quoting) for record in records]
    # Lines as csv.reader is fed them from a file opened with newline='': a lone CR ends one too.
    lines = [len(io.StringIO(piece.decode(), newline="").readlines()) for piece in pieces]
    starts = [1 + sum(lines[:i]) for i in range(len(pieces))]
    data_lines = [line for record, line in zip(records[1:], starts[1:], strict=True) if "".join(record).strip()]
    built.rejected = [(row, data_lines[row - 1], reason) for row, _, reason in built.rejected]
    built.data = bom + b"".join(pieces)
    return built


def report_rows(deployment: Deployment, job_id: str) -> list[list[str]]:
    """Every row of a job's rejects report, parts in order (header rows left out)."""
    listing = deployment.s3.list_objects_v2(Bucket=deployment.bucket, Prefix=f"reports/{job_id}/")
    rows = []
    for key in sorted(o["Key"] for o in listing.get("Contents", [])):
        body = deployment.s3.get_object(Bucket=deployment.bucket, Key=key)["Body"].read().decode()
        rows += list(csv.reader(io.StringIO(body)))[1:]
    return rows


def test_rows_in_are_rows_sent_plus_rows_rejected_for_any_file(deployment, examples):
    uploads = itertools.count()

    @given(
        file=files(),
        rows_per_message=st.integers(1, 40),
        # 0: one invocation with time to spare; otherwise each look at the clock costs this much of a
        # 100 s invocation, whose time runs low after ten to twenty-five looks: a chain of segments.
        clock_step_ms=st.sampled_from([0, 3_000, 6_000, 8_000]),
    )
    def produced(file: Built, rows_per_message: int, clock_step_ms: int) -> None:
        deployment.set_rows_per_message(rows_per_message)
        with mock.patch.object(csv_stream, "MAX_RECORD_BYTES", RECORD_LIMIT):
            job_id = deployment.upload(
                f"uploads/property-{next(uploads)}.csv",
                file.data,
                contexts=lambda: FakeContext(remaining_ms=100_000, step_ms=clock_step_ms),
            )
        job = deployment.job(job_id)
        chunks = sorted((decode(m["Body"]) for m in deployment.receive_all()), key=lambda c: c.chunk)
        assert {c.jobId for c in chunks} <= {job_id}

        sent = [row for chunk in chunks for row in chunk.rows]
        assert job["rowsTotal"] == file.rows == len(sent) + job["rowsRejected"]
        assert sent == file.sent
        assert {(r.row, r.values[1]) for r in sent} == {(r.row, r.values[1]) for r in file.sent}
        assert (job["rowsValid"], job["rowsRejected"], job["blankLines"]) == (
            len(file.sent),
            len(file.rejected),
            file.blank,
        )
        assert [c.chunk for c in chunks] == list(range(int(job["chunksTotal"])))
        reported = report_rows(deployment, job_id)
        assert [(int(r[0]), int(r[1])) for r in reported] == [(row, line) for row, line, _ in file.rejected]
        for report_row, (row, _line, reason) in zip(reported, file.rejected, strict=True):
            assert reason in report_row[2], f"row {row}: {report_row[2]!r}"
        expected_status = "QUEUED" if chunks else ("COMPLETE_WITH_REJECTS" if file.rejected else "COMPLETE")
        assert job["status"] == expected_status

    assert examples(produced, END_TO_END) == END_TO_END.figures["examples"]
