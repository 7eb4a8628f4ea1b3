"""Properties of the producer's CSV reader (`handlers/producer/csv_stream.py`).

Files are written by `csv.writer`, the reference for RFC 4180 quoting, from records of arbitrary
Unicode cells weighted towards what CSV must escape (the four delimiters, quotes, CR, LF, a BOM
character); in any of the four delimiters (comma, semicolon, tab, pipe), with or without a BOM, with
CRLF, LF or CR line ends, with or without a last line end. The reader must
give back the same records, each with the line it starts on and the byte offset and line count
just past it, however the stream splits its bytes into reads; and resuming at any of those offsets
(as a continuation does, with an S3 range request) must give the same tail.
"""

from __future__ import annotations

import csv
import io
import re
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from unittest import mock

from hypothesis import assume, example, given
from hypothesis import strategies as st

from handlers.producer import csv_stream
from handlers.producer.csv_stream import BOM, Record, iter_records
from tests.evidence import Proof

SECTION = "Properties"
PROOFS = [
    ROUND_TRIP := Proof(
        "RELIABILITY",
        SECTION,
        "CSV reader: any csv.writer file reads back, whatever the read sizes",
        injected="records of arbitrary Unicode cells (commas, semicolons, tabs, pipes, quotes, CR, LF, BOM characters),"
        " comma, semicolon, tab or pipe delimited, BOM or not, CRLF, LF or CR line ends, streamed in reads of 1–300"
        " bytes",
        held="the same records, each with its start line, end byte offset and end line",
        figures={"examples": 200, "explicit examples": 1},
        test="test_any_written_file_reads_back_with_its_lines_and_offsets",
    ),
    RESUMED := Proof(
        "RELIABILITY",
        SECTION,
        "CSV reader: resuming at any record boundary (continuation)",
        injected="the same files, read again from every record's end offset as a range request would",
        held="the tail read from a checkpoint equals the tail of the one-pass read, lines and offsets included",
        figures={"examples": 100},
        test="test_resuming_at_any_boundary_gives_the_same_tail",
    ),
    OVERSIZED := Proof(
        "RELIABILITY",
        SECTION,
        "CSV reader: records over the record limit",
        injected="the same files with the record limit lowered to 8–200 bytes",
        held="every record over the limit comes out as `oversized` with its exact byte length and no cells; the others"
        " and every offset are unchanged",
        figures={"examples": 150},
        test="test_a_record_over_the_limit_is_skipped_and_reported",
    ),
    NOT_HELD := Proof(
        "RELIABILITY",
        SECTION,
        "CSV reader: an oversized record is never held",
        injected="records of 0.5 to 2 MiB (one cell, one quoted cell of quotes, delimiters and line ends, or"
        " thousands of fields), in each delimiter, record limit and read block lowered to 1 KiB",
        held="peak memory traced while reading stays under 256 KiB, half the smallest such record",
        figures={"examples": 15},
        test="test_an_oversized_record_is_never_held_in_memory",
    ),
    AS_CSV_READER := Proof(
        "RELIABILITY",
        SECTION,
        "CSV reader: any text reads as csv.reader reads it (each delimiter; CR, LF and CRLF line ends)",
        injected="text of commas, semicolons, tabs, pipes, quotes, CR, LF, CRLF, spaces and letters in any order, CSV"
        " or not, read with any of the four delimiters, streamed in reads of 1–300 bytes, with the record limit at"
        " 1 MiB or lowered to 6–40 bytes",
        held="the records csv.reader (with that delimiter) reads from the file opened with newline='' (a run of CRs:"
        " blank records), their offsets slicing the file back into them; where csv.reader fails, the same records"
        " first and then one reason naming the rule and the line the record starts on",
        figures={"examples": 300},
        test="test_any_text_reads_as_csv_reader_reads_it",
    ),
]

# Characters CSV must quote or that the reader treats specially, drawn often; then any character
# a UTF-8 file can hold except NUL (which no text file holds: the reader fails the file on it).
_SPECIAL = st.sampled_from([",", ";", "\t", "|", '"', "\r", "\n", "\r\n", " ", "\ufeff", "\u2028", "\x85"])
_ANY = st.characters(codec="utf-8", exclude_characters="\x00")
cells = st.lists(st.one_of(_SPECIAL, _ANY, st.text(_ANY, max_size=8)), max_size=6).map("".join)
records_lists = st.lists(st.lists(cells, max_size=6), min_size=1, max_size=15)
DELIMITERS = (",", ";", "\t", "|")
delimiters = st.sampled_from(DELIMITERS)


@dataclass(frozen=True)
class Written:
    """A file as bytes in `delimiter`, and the records it holds with where each is (as the reader
    must say)."""

    data: bytes
    records: list[Record]
    delimiter: str = ","


@st.composite
def written_files(draw: st.DrawFn, records: st.SearchStrategy[list[list[str]]] = records_lists) -> Written:
    rows = draw(records)
    delimiter = draw(delimiters)
    eol = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    # csv.writer leaves a CR or an LF unquoted when the line end is not made of it, which no reader
    # (csv.reader included) reads back as one cell: such a file is written fully quoted.
    unquoted_end = any(end in cell for end in "\r\n" if end not in eol for row in rows for cell in row)
    quoting = csv.QUOTE_ALL if unquoted_end else draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    pieces = [write_record(row, eol, quoting, delimiter) for row in rows]
    if draw(st.booleans()) and pieces[-1] != eol.encode():  # no line end after the last record
        pieces[-1] = pieces[-1][: -len(eol)]
    bom = BOM if draw(st.booleans()) else b""
    # Without a BOM of its own, a file whose first cell starts with U+FEFF starts with a BOM's bytes.
    assume(bom or not pieces[0].startswith(BOM))
    expected, offset, lines = [], len(bom), 0
    for row, piece in zip(rows, pieces, strict=True):
        start_line = lines + 1
        offset += len(piece)
        lines += len(io.StringIO(piece.decode(), newline="").readlines())  # lines as csv.reader is fed them
        expected.append(Record(fields=row, line=start_line, end_offset=offset, end_line=lines))
    return Written(bom + b"".join(pieces), expected, delimiter)


def write_record(row: list[str], eol: str, quoting: int, delimiter: str = ",") -> bytes:
    """One record as `csv.writer` writes it, line end included, in UTF-8."""
    text = io.StringIO()
    csv.writer(text, delimiter=delimiter, lineterminator=eol, quoting=quoting).writerow(row)
    return text.getvalue().encode()


class ShortReads(io.BytesIO):
    """A stream whose reads return fewer bytes than asked, in a given cycle of sizes (as a network
    stream may), never an empty read before the end."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        super().__init__(data)
        self._sizes = _cycle(sizes)

    def read(self, size: int | None = -1) -> bytes:
        step = next(self._sizes)
        return super().read(step if size is None or size < 0 else min(size, step))


def _cycle(sizes: list[int]) -> Iterator[int]:
    while True:
        yield from sizes


read_sizes = st.lists(st.integers(1, 300), min_size=1, max_size=6)


def _where(records: list[Record]) -> list[tuple[list[str], int, int, int, int]]:
    return [(r.fields, r.line, r.end_offset, r.end_line, r.oversized) for r in records]


# Found by this property: with reads shorter than a BOM, a first record under 3 bytes was handed
# out before the BOM check ran, which then stripped a U+FEFF starting the second record.
FEFF_AFTER_A_SHORT_FIRST_RECORD = Written(b"\r\n\xef\xbb\xbfx\r\n", [Record([], 1, 2, 1), Record(["\ufeffx"], 2, 8, 2)])


@given(file=written_files(), sizes=read_sizes)
@example(file=FEFF_AFTER_A_SHORT_FIRST_RECORD, sizes=[1])
def _round_trip(file: Written, sizes: list[int]) -> None:
    read = list(iter_records(ShortReads(file.data, sizes), delimiter=file.delimiter))
    assert _where(read) == _where(file.records)


def test_any_written_file_reads_back_with_its_lines_and_offsets(examples):
    ran = ROUND_TRIP.figures["examples"] + ROUND_TRIP.figures["explicit examples"]
    assert examples(_round_trip, ROUND_TRIP) == ran


@given(file=written_files(), sizes=read_sizes)
def _resumed(file: Written, sizes: list[int]) -> None:
    whole = list(iter_records(io.BytesIO(file.data), delimiter=file.delimiter))
    for i, boundary in enumerate(whole):
        tail = ShortReads(file.data[boundary.end_offset :], sizes)
        resumed = list(iter_records(tail, boundary.end_offset, boundary.end_line, file.delimiter))
        assert _where(resumed) == _where(whole[i + 1 :]), f"resumed after record {i + 1}"


def test_resuming_at_any_boundary_gives_the_same_tail(examples):
    assert examples(_resumed, RESUMED) == RESUMED.figures["examples"]


@given(file=written_files(), sizes=read_sizes, limit=st.integers(8, 200))
def _oversized(file: Written, sizes: list[int], limit: int) -> None:
    with mock.patch.object(csv_stream, "MAX_RECORD_BYTES", limit):
        read = list(iter_records(ShortReads(file.data, sizes), delimiter=file.delimiter))
    starts = [len(BOM) if file.data.startswith(BOM) else 0] + [r.end_offset for r in file.records[:-1]]
    expected = []
    for record, start in zip(file.records, starts, strict=True):
        size = record.end_offset - start
        over = size > limit
        expected.append(
            (
                [] if over else record.fields,
                record.line,
                record.end_offset,
                record.end_line,
                size if over else 0,
            )
        )
    assert _where(read) == expected


def test_a_record_over_the_limit_is_skipped_and_reported(examples):
    assert examples(_oversized, OVERSIZED) == OVERSIZED.figures["examples"]


_SMALL_LIMIT = 1024
# The reader's own bookkeeping, whatever the record: what it keeps of a record up to the limit, a
# read block, and the regular-expression engine's state over one scanning window of a block.
_MEMORY_BOUND = 256 * 1024


@dataclass(frozen=True)
class Hostile:
    """A record of `size` characters repeating `unit` (its commas the file's delimiter), quoted or
    not: drawn as parameters (the record itself is megabytes, too long to show in a failure)."""

    unit: str
    size: int
    quoted: bool
    delimiter: str = ","

    def record(self) -> str:
        unit = self.unit.replace(",", self.delimiter)
        content = (unit * (self.size // len(unit) + 1))[: self.size]
        return '"' + content.replace('"', '""') + '"' if self.quoted else content


hostile = st.builds(
    Hostile,
    unit=st.sampled_from(['"",\n', "x,", '"\r\n', "\n,", "x", '","']),
    size=st.integers(2 * _MEMORY_BOUND, 8 * _MEMORY_BOUND),
    quoted=st.booleans(),
    delimiter=delimiters,
).map(lambda h: h if h.unit in ("x,", "x") else Hostile(h.unit, h.size, quoted=True, delimiter=h.delimiter))


@given(shape=hostile)
def _not_held(shape: Hostile) -> None:
    record, d = shape.record(), shape.delimiter
    data = f"name{d}mail\nAnn{d}ann@example.com\n{record}\nBob{d}bob@example.com\n".encode()
    with (
        mock.patch.object(csv_stream, "MAX_RECORD_BYTES", _SMALL_LIMIT),
        mock.patch.object(csv_stream, "READ_SIZE", _SMALL_LIMIT),
    ):
        tracemalloc.start()
        try:
            read = [(r.fields, r.oversized) for r in iter_records(io.BytesIO(data), delimiter=d)]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    size = len(record.encode()) + 1
    assert read == [(["name", "mail"], 0), (["Ann", "ann@example.com"], 0), ([], size), (["Bob", "bob@example.com"], 0)]
    assert peak < _MEMORY_BOUND < size, f"peak {peak} bytes while skipping a record of {size}"


def test_an_oversized_record_is_never_held_in_memory(examples):
    assert examples(_not_held, NOT_HELD) == NOT_HELD.figures["examples"]


# Text that CSV's line ends and quotes make hard, in any order: most of it is not CSV at all.
_CSV_TEXT = st.lists(st.sampled_from([",", ";", "\t", "|", '"', "\r", "\n", "\r\n", " ", "a", "é"]), max_size=40).map(
    "".join
)
# The rule a message names for a closing quote followed by text: the file's delimiter was expected.
_EXPECTED = {",": "','", ";": "';'", "\t": "a tab", "|": "'|'"}


def _not_csv(delimiter: str) -> re.Pattern[str]:
    rules = f"{re.escape(_EXPECTED[delimiter])} expected after '\"'|unexpected end of data"
    return re.compile(rf"not CSV: ({rules}) \(record starting on line (\d+)\)")


def csv_reader_records(data: bytes, delimiter: str = ",") -> tuple[list[Record], int | None]:
    """The records `csv.reader` reads from `data` opened with newline='' (as its documentation asks:
    https://docs.python.org/3/library/csv.html#csv.reader), each where it starts and ends; and the
    line the record it fails on starts on (None if it reads to the end)."""
    lines = io.StringIO(data.decode(), newline="").readlines()
    ends = list(accumulate((len(line.encode()) for line in lines), initial=0))
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    records: list[Record] = []
    try:
        for fields in reader:
            first = records[-1].end_line + 1 if records else 1
            records.append(Record(fields, first, ends[reader.line_num], reader.line_num))
    except csv.Error:
        return records, (records[-1].end_line + 1 if records else 1)
    return records, None


def _expected_at_limit(records: list[Record], limit: int) -> list[tuple[list[str], int, int, int, int]]:
    """`records` as the reader gives them with the record limit at `limit`: a longer one skipped."""
    starts = [0, *(record.end_offset for record in records)]
    return [
        ([], r.line, r.end_offset, r.end_line, r.end_offset - start) if r.end_offset - start > limit else _where([r])[0]
        for r, start in zip(records, starts[:-1], strict=True)
    ]


@given(
    text=_CSV_TEXT,
    delimiter=delimiters,
    sizes=read_sizes,
    limit=st.one_of(st.just(csv_stream.MAX_RECORD_BYTES), st.integers(6, 40)),
)
def _as_csv_reader(text: str, delimiter: str, sizes: list[int], limit: int) -> None:
    data = text.encode()
    expected, failing_line = csv_reader_records(data, delimiter)
    read: list[Record] = []
    problem = None
    with mock.patch.object(csv_stream, "MAX_RECORD_BYTES", limit):
        try:
            read.extend(iter_records(ShortReads(data, sizes), delimiter=delimiter))
        except csv_stream.FileProblem as error:
            problem = str(error)
    assert _where(read) == _expected_at_limit(expected, limit)
    starts = [0, *(record.end_offset for record in read)]
    for record, start in zip(read, starts[:-1], strict=True):  # each record is its own slice of the file
        alone = list(
            csv.reader(
                io.StringIO(data[start : record.end_offset].decode(), newline=""), delimiter=delimiter, strict=True
            )
        )
        assert alone == [record.fields] if not record.oversized else len(alone) == 1
    if failing_line is None:
        assert problem is None
    else:
        found = _not_csv(delimiter).fullmatch(problem or "")
        assert found and int(found[2]) == failing_line, f"csv.reader fails on line {failing_line}: {problem}"


def test_any_text_reads_as_csv_reader_reads_it(examples):
    assert examples(_as_csv_reader, AS_CSV_READER) == AS_CSV_READER.figures["examples"]
