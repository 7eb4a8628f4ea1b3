"""Reading CSV records with exact byte offsets, from any record boundary."""

import codecs
import csv
import gzip
import io
import itertools
import re
from pathlib import Path

import pytest

from handlers.producer import csv_stream
from handlers.producer.csv_stream import BOM, MAX_RECORD_BYTES, FileProblem, LineRecords, blocks, iter_records


class Trickle(io.BytesIO):
    """A stream that returns at most `size` bytes per read, as a network stream may."""

    def __init__(self, data: bytes, size: int) -> None:
        super().__init__(data)
        self._size = size

    def read(self, n: int = -1) -> bytes:
        return super().read(min(n, self._size) if n >= 0 else self._size)


TRICKY = (
    "\ufeffname,mail,phone\r\n"
    '"Doe, John",john@gmail.com,1234567\r\n'
    '"Multi\nline ""quoted""",multi@gmail.com,\r\n'
    "\r\n"
    "Émile,emile@example.fr,+33123456789"
).encode()


def test_records_handle_bom_crlf_quotes_and_embedded_newlines():
    records = list(iter_records(io.BytesIO(TRICKY)))
    assert [r.fields for r in records] == [
        ["name", "mail", "phone"],
        ["Doe, John", "john@gmail.com", "1234567"],
        ['Multi\nline "quoted"', "multi@gmail.com", ""],
        [],
        ["Émile", "emile@example.fr", "+33123456789"],
    ]
    assert [r.line for r in records] == [1, 2, 3, 5, 6]
    assert records[-1].end_offset == len(TRICKY)


@pytest.mark.parametrize("read_size", [1, 2, 3, 7, 1 << 20])
def test_offsets_do_not_depend_on_how_the_stream_is_chunked(read_size):
    expected = [(r.fields, r.end_offset, r.end_line) for r in iter_records(io.BytesIO(TRICKY))]
    assert [(r.fields, r.end_offset, r.end_line) for r in iter_records(Trickle(TRICKY, read_size))] == expected


def test_resuming_at_any_record_boundary_reads_the_same_remaining_records():
    records = list(iter_records(io.BytesIO(TRICKY)))
    for i, boundary in enumerate(records[:-1]):
        resumed = iter_records(io.BytesIO(TRICKY[boundary.end_offset :]), boundary.end_offset, boundary.end_line)
        assert [(r.fields, r.line, r.end_offset) for r in resumed] == [
            (r.fields, r.line, r.end_offset) for r in records[i + 1 :]
        ]


def test_invalid_utf8_names_the_byte_offset_and_line():
    before = b"name,mail\nok,ok@example.com\nbad"
    data = before + b"\xff,x@example.com\n"
    with pytest.raises(FileProblem, match=rf"not UTF-8: byte 0xff at byte offset {len(before)} \(line 3\)"):
        list(iter_records(io.BytesIO(data)))


# What a UTF-8 error adds when the byte is a character in cp1252 (Windows-1252), and otherwise.
SETTING = "csv-ingest:schema.format.encoding"
CP1252_HINT = (
    "; it is a character in cp1252 (Windows-1252), the encoding of most Windows exports: if the file is one,"
    f" set {SETTING} to cp1252 (or latin-1)"
)
OTHER_HINT = f"; save the file as UTF-8 CSV, or set {SETTING} to the file's encoding"
UTF16_PROBLEM = f"not a text CSV file in UTF-8: it starts with a UTF-16 byte order mark; set {SETTING} to utf-16"
GZIP_PROBLEM = (
    "gzip data, not text: the file is gzip-compressed; upload it under a key ending .gz (.csv.gz) so that it is"
    " decompressed"
)
# The five bytes cp1252 leaves undefined (https://docs.python.org/3/library/codecs.html#standard-encodings,
# Python's cp1252 codec: they fail to decode).
CP1252_UNDEFINED = (0x81, 0x8D, 0x8F, 0x90, 0x9D)


@pytest.mark.parametrize("byte", [0x80, 0x9F, 0xA0, 0xE9, 0xFF])
@pytest.mark.parametrize("read_size", [1, 7, 1 << 16])
def test_a_byte_that_is_a_cp1252_character_says_which_encoding_to_set(byte, read_size):
    before = b"name,mail\nAnn,a@example.com\nL"
    data = before + bytes([byte]) + b"a,l@example.com\n"
    problem = read_problem(data, read_size)
    assert (
        problem
        == f"not UTF-8: byte 0x{byte:02x} at byte offset {len(before)} (line 3) is not valid UTF-8" + CP1252_HINT
    )
    assert problem.isascii(), "the character itself (part of a cell) is never shown"


@pytest.mark.parametrize("byte", CP1252_UNDEFINED)
def test_a_byte_cp1252_leaves_undefined_gets_the_general_encoding_hint(byte):
    data = b"name,mail\nL" + bytes([byte]) + b"a,l@example.com\n"
    assert read_problem(data, 1 << 16) == (
        f"not UTF-8: byte 0x{byte:02x} at byte offset 11 (line 2) is not valid UTF-8" + OTHER_HINT
    )


@pytest.mark.parametrize(("byte", "hint"), [(0xE9, CP1252_HINT), (0x8D, OTHER_HINT)])
def test_an_oversized_record_with_a_bad_byte_says_which_encoding_to_set(byte, hint):
    data = b"name,mail\n" + b"x" * 2_000_000 + bytes([byte]) + b",a@example.com\n"
    assert read_problem(data, 1 << 16) == (
        f"not UTF-8: the record starting on line 2 holds bytes that are not UTF-8 (the first 0x{byte:02x})" + hint
    )


UTF16_TEXT = "name,mail\nÉmile,e@example.fr\n"


@pytest.mark.parametrize(
    "data",
    [
        codecs.BOM_UTF16_LE + UTF16_TEXT.encode("utf-16-le"),
        codecs.BOM_UTF16_BE + UTF16_TEXT.encode("utf-16-be"),
        "中文中文\n".encode("utf-16"),  # no NUL byte in its first line: the BOM is the first bad byte
        codecs.BOM_UTF16_LE + b"x" * 3000 + b"\x00\n",  # an oversized first record (the limit lowered below)
    ],
    ids=["le", "be", "no-nul-in-line-1", "oversized"],
)
@pytest.mark.parametrize("read_size", [1, 2, 3, 1 << 16])
def test_a_file_starting_with_a_utf16_byte_order_mark_says_to_set_utf16(monkeypatch, data, read_size):
    monkeypatch.setattr(csv_stream, "MAX_RECORD_BYTES", 2048)
    assert read_problem(data, read_size) == UTF16_PROBLEM


def test_a_nul_byte_after_a_utf16_byte_order_mark_elsewhere_is_not_called_utf16():
    # Bytes FF FE inside the file say nothing of its encoding: only its first two bytes can be a BOM.
    data = b"name,mail\nAnn,a@example.com\n" + codecs.BOM_UTF16_LE + b"\x00\n"
    assert read_problem(data, 1 << 16) == "not a text CSV file: NUL byte at byte offset 30 (line 3)" + OTHER_HINT


def gzip_with_no_nul_in_its_first_line() -> bytes:
    """Real gzip data whose first line holds no NUL byte, so that the first bad byte the reader meets
    is 0x8b, gzip's second, not a NUL: its flags say FTEXT (a hint that changes nothing of the data,
    RFC 1952 §2.3.1), its mtime has no zero byte, and of files of 1, 2, … rows it is the first whose
    deflate data holds a line end before a zero byte."""
    for rows in itertools.count(1):
        text = b"name,mail\n" + b"".join(b"Ann %d,a%d@example.com\n" % (row, row * 7919 % 1000) for row in range(rows))
        data = bytearray(gzip.compress(text, mtime=0x5F5E1001))
        data[3] = 0x01  # FLG
        if b"\x00" not in re.split(rb"[\r\n]", data, maxsplit=1)[0]:
            return bytes(data)
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("data", "read_sizes"),
    [
        (gzip.compress(b"name,mail\n" * 100), [1, 2, 3, 1 << 16]),  # a NUL at byte offset 3 (no flags)
        (gzip_with_no_nul_in_its_first_line(), [1, 2, 3, 1 << 16]),  # not UTF-8 at byte offset 1
        (b"\x1f\x8b" + b"x" * 2_000_000 + b"\x00\n", [1 << 16]),  # an oversized first record
        (b"\x1f\x8b" + b"x" * 2_000_000 + b"\xff\n", [1 << 16]),
    ],
    ids=["nul", "not-utf8", "oversized-nul", "oversized-not-utf8"],
)
def test_a_file_starting_with_gzip_magic_says_to_upload_it_as_gz(data, read_sizes):
    for read_size in read_sizes:
        assert read_problem(data, read_size) == GZIP_PROBLEM, f"read {read_size} bytes at a time"


def test_gzip_magic_elsewhere_in_a_file_is_not_called_gzip():
    # Bytes 1F 8B inside the file say nothing of what it is: only its first two bytes are gzip's magic.
    data = b"name,mail\nAnn,a@example.com\n\x1f\x8b\x00\n"
    assert read_problem(data, 1 << 16) == "not a text CSV file: NUL byte at byte offset 30 (line 3)" + OTHER_HINT


def test_utf8_character_split_across_reads_is_fine():
    data = "name,mail\nÉmile,e@example.fr\n".encode()
    assert list(iter_records(Trickle(data, 1)))[1].fields == ["Émile", "e@example.fr"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'name,mail\n"unterminated,x@example.com\n', "not CSV: unexpected end of data"),
        (b'name,mail\n"ab"c,x@example.com\n', "not CSV: ',' expected after '\"' \\(record starting on line 2\\)"),
        (
            "name,mail\nx,y\n".encode("utf-16-le"),  # no BOM: not known to be UTF-16
            "not a text CSV file: NUL byte at byte offset 1 \\(line 1\\); save the file as UTF-8 CSV, or set"
            " csv-ingest:schema.format.encoding to the file's encoding",
        ),
    ],
)
def test_text_that_is_not_csv_is_a_file_problem(data, reason):
    with pytest.raises(FileProblem, match=reason):
        list(iter_records(io.BytesIO(data)))


# Records of every quoting shape: quoted cells with newlines, "" escapes and commas, literal quotes
# in unquoted cells, CRLF endings, a last record without a newline.
SHAPES = (
    "name,mail,notes\r\n"
    '"a ""quoted""\nname",a@example.com,"x,\ny\r\nz"\r\n'
    'b"c,b@example.com,5" screen\n'
    "plain,p@example.com," + "n" * 120 + "\n"
    'cr,c@example.com,"' + "windows " * 10 + '"\r\r\n'  # csv.writer's line end on Windows, in text mode
    '"",q@example.com,"' + ("line\n" * 30) + '"\n'
    "last,l@example.com,end"
).encode()


def _shape(records):
    return [(r.line, r.end_offset, r.end_line, bool(r.oversized)) for r in records]


@pytest.mark.parametrize("limit", [16, 40, 100, 1 << 20])
@pytest.mark.parametrize("read_size", [1, 5, 64, 1 << 16])
def test_an_oversized_record_is_skipped_to_exactly_where_csv_would_end_it(monkeypatch, limit, read_size):
    full = list(iter_records(io.BytesIO(SHAPES)))
    monkeypatch.setattr("handlers.producer.csv_stream.MAX_RECORD_BYTES", limit)
    monkeypatch.setattr("handlers.producer.csv_stream.READ_SIZE", read_size)
    limited = list(iter_records(io.BytesIO(SHAPES)))
    assert [(r.line, r.end_offset, r.end_line) for r in limited] == [(r.line, r.end_offset, r.end_line) for r in full]
    starts = [0] + [r.end_offset for r in full[:-1]]
    for record, start, whole in zip(limited, starts, full, strict=True):
        size = record.end_offset - start
        if size > limit:
            assert (record.fields, record.oversized) == ([], size), f"line {record.line} is over {limit} bytes"
        else:
            assert (record.fields, record.oversized) == (whole.fields, 0), f"line {record.line} fits"
    assert any(r.oversized for r in limited) == (limit < 200)


def test_one_huge_cell_is_an_oversized_record_and_the_next_record_reads_normally():
    huge = "x" * 1_100_000
    data = f'name,mail\n"{huge}",a@example.com\nBob,bob@example.com\n'.encode()
    _header, big, bob = iter_records(io.BytesIO(data))
    assert (big.fields, big.oversized, big.line, big.end_line) == ([], len(huge) + 17, 2, 2)
    assert not big.blank
    assert (bob.fields, bob.line, bob.end_offset) == (["Bob", "bob@example.com"], 3, len(data))


def test_a_cell_over_pythons_default_field_limit_is_read():
    data = f"name,mail\n{'n' * 140_000},a@example.com\n".encode()
    assert len(list(iter_records(io.BytesIO(data)))[1].fields[0]) == 140_000


def test_a_crafted_record_of_many_quoted_newlines_is_skipped_in_bounded_memory():
    import tracemalloc

    data = b"name,mail\n" + b'"\n",' * 6_000_000 + b"a@example.com\nBob,bob@example.com\n"  # 24 MB
    tracemalloc.start()
    try:
        records = list(iter_records(io.BytesIO(data)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [r.oversized for r in records] == [0, 24_000_014, 0]
    assert records[2].fields == ["Bob", "bob@example.com"] and records[2].line == 6_000_003
    # What csv.reader holds of the record up to the limit (its cells and their list), a read
    # block, and the copies the scanner makes of them: a few times the limit, not the record.
    assert peak < 5 * MAX_RECORD_BYTES, f"peak {peak} bytes for a record of 24 MB"


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        (b'"' + b"x" * 2_000_000, "not CSV: unexpected end of data \\(record starting on line 2\\)"),
        (b'"' + b"x" * 2_000_000 + b'"y\n', "not CSV: ',' expected after '\"' \\(record starting on line 2\\)"),
        (b"x" * 2_000_000 + b"\xff\n", "not UTF-8: the record starting on line 2"),
        (
            b"x" * 2_000_000 + b"\x00\n",
            "not a text CSV file: NUL byte in the record starting on line 2; save the file as UTF-8 CSV, or set"
            " csv-ingest:schema.format.encoding to the file's encoding",
        ),
    ],
)
def test_an_oversized_record_must_still_be_csv_text(tail, reason):
    with pytest.raises(FileProblem, match=reason):
        list(iter_records(io.BytesIO(b"name,mail\n" + tail)))


def test_a_record_too_long_even_to_skip_fails_the_file(monkeypatch):
    monkeypatch.setattr("handlers.producer.csv_stream.MAX_SKIPPED_RECORD_BYTES", 3_000_000)
    with pytest.raises(FileProblem, match="not a CSV of rows: the record starting on line 2 is over 3000000 bytes"):
        list(iter_records(io.BytesIO(b"name,mail\n" + b"x" * 3_000_001 + b"\nBob,bob@example.com\n")))


# --- the reader against an independent computation, at every block boundary ----------------------

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
CORPUS_FILES = sorted([*CORPUS.glob("*.csv"), *CORPUS.glob("*.tsv")])
# What the reader says of each corpus file that is not UTF-8 CSV (read with a comma), word for word.
# The files in other encodings are what a stack reads by declaring theirs: read as UTF-8, each
# says which.
CORPUS_PROBLEMS = {
    "cp1252.csv": "not UTF-8: byte 0xc9 at byte offset 23 (line 2) is not valid UTF-8" + CP1252_HINT,
    "utf16_be.csv": UTF16_PROBLEM,
    "gzip_as_csv.csv": GZIP_PROBLEM,
    "invalid_utf8_late.csv": "not UTF-8: byte 0xe9 at byte offset 106 (line 4) is not valid UTF-8" + CP1252_HINT,
    "latin1.csv": "not UTF-8: byte 0xeb at byte offset 18 (line 2) is not valid UTF-8" + CP1252_HINT,
    "nul_byte.csv": "not a text CSV file: NUL byte at byte offset 54 (line 3)" + OTHER_HINT,
    "pdf_as_csv.csv": "not UTF-8: byte 0xe2 at byte offset 10 (line 2) is not valid UTF-8" + CP1252_HINT,
    "png_as_csv.csv": "not UTF-8: byte 0x89 at byte offset 0 (line 1) is not valid UTF-8" + CP1252_HINT,
    "text_after_closing_quote.csv": "not CSV: ',' expected after '\"' (record starting on line 2)",
    "unbalanced_quote.csv": "not CSV: unexpected end of data (record starting on line 3)",
    "utf16.csv": UTF16_PROBLEM,
    "xlsx_like_zip_header.csv": "not a text CSV file: NUL byte at byte offset 4 (line 1)" + OTHER_HINT,
    "zip_as_csv.csv": "not a text CSV file: NUL byte at byte offset 5 (line 1)" + OTHER_HINT,
}


def reference_records(data: bytes, delimiter: str = ",") -> list[tuple[list[str], int, int, int]]:
    """Each record's fields, first line, end offset and end line, computed independently of the
    reader: `csv.reader` over the text split into lines as a file opened with `newline=''` splits
    it (at LF, CRLF and a lone CR, ends kept: https://docs.python.org/3/library/csv.html#csv.reader
    and https://docs.python.org/3/library/io.html#io.TextIOWrapper), one line at a time, a line's
    end offset the sum of the byte lengths before it."""
    start = len(BOM) if data.startswith(BOM) else 0
    lines = io.StringIO(data[start:].decode("utf-8"), newline="").readlines()
    ends = list(itertools.accumulate((len(line.encode()) for line in lines), initial=start))
    reader = csv.reader(iter(lines), delimiter=delimiter, strict=True)
    records, lines_before = [], 0
    for fields in reader:
        records.append((fields, lines_before + 1, ends[reader.line_num], reader.line_num))
        lines_before = reader.line_num
    return records


def read_records(data: bytes, read_size: int, delimiter: str = ",") -> list[tuple[list[str], int, int, int]]:
    return [
        (r.fields, r.line, r.end_offset, r.end_line)
        for r in iter_records(Trickle(data, read_size), delimiter=delimiter)
    ]


def read_problem(data: bytes, read_size: int, delimiter: str = ",") -> str:
    with pytest.raises(FileProblem) as problem:
        list(iter_records(Trickle(data, read_size), delimiter=delimiter))
    return str(problem.value)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda path: path.name)
@pytest.mark.parametrize("read_size", [1, 2, 3, 5, 64, 1 << 16])
def test_every_corpus_file_reads_as_the_independent_computation_says(monkeypatch, path, read_size):
    monkeypatch.setattr("handlers.producer.csv_stream.READ_SIZE", read_size)
    data = path.read_bytes()
    if path.name in CORPUS_PROBLEMS:
        assert read_problem(data, read_size) == CORPUS_PROBLEMS[path.name]
    else:  # a text file: as csv.reader reads it, or fails on it (a file in another delimiter may)
        assert read_outcome(data, read_size, ",") == reference_outcome(data, ",")


# Records whose bytes a block boundary can split badly: a character of 2, 3 and 4 bytes, a quoted
# newline, a CRLF, a quoted CRLF, a BOM, an empty line, a last line without a line end.
SPLITS = (
    BOM
    + b"name,mail,notes\r\n"
    + "Émile,e@example.fr,中文\r\n".encode()
    + b'"two\nlines",t@example.com,"crlf\r\ninside"\n'
    + b"\n"
    + '😀,s@example.com,"a ""quote"""\r\n'.encode()
    + b"last,l@example.com,end"
)


@pytest.mark.parametrize("read_size", range(1, len(SPLITS) + 1))
def test_a_block_boundary_anywhere_in_a_record_changes_nothing(monkeypatch, read_size):
    monkeypatch.setattr("handlers.producer.csv_stream.READ_SIZE", read_size)
    assert read_records(SPLITS, read_size) == reference_records(SPLITS)


@pytest.mark.parametrize("read_size", range(1, len(SPLITS) + 1))
def test_resuming_after_each_record_with_any_block_size_reads_the_same_tail(monkeypatch, read_size):
    monkeypatch.setattr("handlers.producer.csv_stream.READ_SIZE", read_size)
    assert_resumes_after_each_record(SPLITS, read_size)


def assert_resumes_after_each_record(data: bytes, read_size: int, delimiter: str = ",") -> None:
    """Resumed at each record's end offset and line, the reader gives exactly the records after it."""
    expected = reference_records(data, delimiter)
    for i, (_fields, _line, end_offset, end_line) in enumerate(expected):
        tail = [
            (r.fields, r.line, r.end_offset, r.end_line)
            for r in iter_records(Trickle(data[end_offset:], read_size), end_offset, end_line, delimiter=delimiter)
        ]
        assert tail == expected[i + 1 :], f"resumed after record {i + 1}"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (b"\xff", "not UTF-8: byte 0xff at byte offset {offset} (line 3) is not valid UTF-8" + CP1252_HINT),
        (
            b"\xc3",
            "not UTF-8: byte 0xc3 at byte offset {offset} (line 3) is not valid UTF-8" + CP1252_HINT,
        ),  # cut short
        (b"\x00", "not a text CSV file: NUL byte at byte offset {offset} (line 3)" + OTHER_HINT),
    ],
)
@pytest.mark.parametrize("read_size", [1, 2, 3, 4, 7, 16, 1 << 16])
def test_a_bad_byte_is_named_by_offset_and_line_whatever_the_block_size(monkeypatch, bad, reason, read_size):
    monkeypatch.setattr("handlers.producer.csv_stream.READ_SIZE", read_size)
    before = "name,mail\nÉmile,é@example.fr\nAnn".encode()
    data = before + bad + b",a@example.com\nBob,b@example.com\n"
    assert read_problem(data, read_size) == reason.format(offset=len(before))


@pytest.mark.parametrize("read_size", [1, 3, 8, 19, 20, 21, 40, 1 << 16])
@pytest.mark.parametrize("slack", [-1, 0, 1])
def test_the_record_limit_holds_exactly_at_block_boundaries(monkeypatch, read_size, slack):
    # Records of 20 bytes, the limit at 19, 20 or 21 bytes, and blocks ending inside, at and after a record.
    data = b"name,mail,n\n" + b"".join(b"Ann,a%d@example.co,%d\n" % (i, i) for i in range(10))
    sizes = [len(line) for line in data.splitlines(keepends=True)][1:]
    assert set(sizes) == {20}
    limit = 20 + slack
    monkeypatch.setattr("handlers.producer.csv_stream.READ_SIZE", read_size)
    monkeypatch.setattr("handlers.producer.csv_stream.MAX_RECORD_BYTES", limit)
    records = list(iter_records(Trickle(data, read_size)))
    expected = reference_records(data)
    assert [(r.line, r.end_offset, r.end_line) for r in records] == [e[1:] for e in expected]
    assert [(r.fields, r.oversized) for r in records[1:]] == [
        ([], 20) if limit < 20 else (fields, 0) for fields, *_ in expected[1:]
    ]


# --- a lone CR ends a line, as csv.reader reads a file opened with newline='' ----------------------

# Lines ended by a lone CR (old Mac tools), a run of CRs (blank lines), CRLF and LF mixed, a CR and
# a CRLF inside quotes, a closing quote followed by a lone CR, and a last line ended by a CR.
LONE_CRS = (
    b"name,mail,notes\r"
    b"Ann,a@example.com,x\r\r\r"
    b"Bob,b@example.com,y\r\n"
    b'"C\rD",c@example.com,"two\r\nlines"\r'
    b"Eve,e@example.com,z\n"
    b'"F",f@example.com,"w"\r\r\n'
    b"Gus,g@example.com,last\r"
)


def test_a_lone_cr_ends_a_line_and_a_run_of_crs_is_blank_lines():
    records = list(iter_records(io.BytesIO(LONE_CRS)))
    assert [(r.fields, r.line, r.end_line, r.blank) for r in records] == [
        (["name", "mail", "notes"], 1, 1, False),
        (["Ann", "a@example.com", "x"], 2, 2, False),
        ([], 3, 3, True),
        ([], 4, 4, True),
        (["Bob", "b@example.com", "y"], 5, 5, False),
        (["C\rD", "c@example.com", "two\r\nlines"], 6, 8, False),
        (["Eve", "e@example.com", "z"], 9, 9, False),
        (["F", "f@example.com", "w"], 10, 10, False),
        ([], 11, 11, True),
        (["Gus", "g@example.com", "last"], 12, 12, False),
    ]
    assert records[-1].end_offset == len(LONE_CRS)


@pytest.mark.parametrize("read_size", range(1, 40))
def test_lone_crs_read_as_csv_reader_reads_them_whatever_the_block_size(monkeypatch, read_size):
    monkeypatch.setattr("handlers.producer.csv_stream.READ_SIZE", read_size)
    assert read_records(LONE_CRS, read_size) == reference_records(LONE_CRS)


@pytest.mark.parametrize("read_size", [1, 2, 3, 7, 1 << 16])
def test_resuming_after_a_lone_cr_reads_the_same_tail(monkeypatch, read_size):
    monkeypatch.setattr("handlers.producer.csv_stream.READ_SIZE", read_size)
    assert_resumes_after_each_record(LONE_CRS, read_size)


@pytest.mark.parametrize("limit", [8, 16, 24, 40])
@pytest.mark.parametrize("read_size", [1, 5, 64, 1 << 16])
def test_an_oversized_record_ends_at_a_lone_cr_as_a_small_one_does(monkeypatch, limit, read_size):
    full = reference_records(LONE_CRS)
    monkeypatch.setattr("handlers.producer.csv_stream.MAX_RECORD_BYTES", limit)
    monkeypatch.setattr("handlers.producer.csv_stream.READ_SIZE", read_size)
    limited = list(iter_records(Trickle(LONE_CRS, read_size)))
    assert [(r.line, r.end_offset, r.end_line) for r in limited] == [whole[1:] for whole in full]
    starts = [0] + [whole[2] for whole in full[:-1]]
    for record, start, whole in zip(limited, starts, full, strict=True):
        size = record.end_offset - start
        assert (record.fields, record.oversized) == (([], size) if size > limit else (whole[0], 0)), record.line


def test_a_record_over_a_mib_ends_at_a_lone_cr():
    huge = b"Ann,a@example.com," + b"x" * 1_100_000
    data = b"name,mail,notes\r" + huge + b"\rBob,b@example.com,y\r\r"
    _header, big, bob, blank = iter_records(io.BytesIO(data))
    assert (big.fields, big.oversized, big.line, big.end_line) == ([], len(huge) + 1, 2, 2)
    assert (bob.fields, bob.line, bob.end_offset) == (["Bob", "b@example.com", "y"], 3, len(data) - 1)
    assert (blank.fields, blank.line, blank.end_offset) == ([], 4, len(data))


@pytest.mark.parametrize(
    "data",
    [
        b'name,mail\r"ab"c,x@example.com\r',
        b'name,mail\r"ab"\rc\n"d"e\n',
        b'name,mail\r\r"open,x@example.com\r',
    ],
)
@pytest.mark.parametrize("limit", [4, 1 << 20])
def test_a_file_that_is_not_csv_fails_naming_the_record_and_the_rule_never_python(monkeypatch, data, limit):
    monkeypatch.setattr("handlers.producer.csv_stream.MAX_RECORD_BYTES", limit)
    problem = read_problem(data, 1 << 16)
    assert re.fullmatch(
        r"not CSV: (',' expected after '\"'|unexpected end of data) \(record starting on line \d\)", problem
    )


# --- every delimiter: comma, semicolon, tab and pipe ----------------------------------------------

DELIMITERS = (",", ";", "\t", "|")


def delimited(delimiter: str) -> bytes:
    """A file in `delimiter` of every shape: quoted delimiters, a quoted newline and CRLF, a blank
    line and a line of delimiters and spaces, CRLF, LF and lone-CR line ends, the other three
    delimiters unquoted in a cell (ordinary characters here), a quoted cell after an unquoted one
    holding a comma before its newline (where a scanner that took the comma for the delimiter would
    end the record), a last line without a line end."""
    d, others = delimiter, "".join(other for other in DELIMITERS if other != delimiter)
    return (
        f"name{d}mail{d}notes\r\n"
        f'"Doe{d} John"{d}john@example.com{d}"two\nlines"\r\n'
        "\r\n"
        f"{d} {d}\n"
        f"a{others}b{d}ab@example.com{d}x\n"
        f'plain{d}"quoted, with\na newline"{d}z\n'
        f'"a ""q""{d}"{d}q@example.com{d}"crlf\r\n{d}inside"\r'
        f"Émile{d}e@example.fr{d}last"
    ).encode()


@pytest.mark.parametrize("delimiter", DELIMITERS, ids=repr)
def test_each_delimiter_splits_fields_and_nothing_else_does(delimiter):
    records = read_records(delimited(delimiter), 1 << 16, delimiter)
    others = "".join(other for other in DELIMITERS if other != delimiter)
    assert [fields for fields, *_where in records] == [
        ["name", "mail", "notes"],
        [f"Doe{delimiter} John", "john@example.com", "two\nlines"],
        [],
        ["", " ", ""],
        [f"a{others}b", "ab@example.com", "x"],
        ["plain", "quoted, with\na newline", "z"],
        [f'a "q"{delimiter}', "q@example.com", f"crlf\r\n{delimiter}inside"],
        ["Émile", "e@example.fr", "last"],
    ]


@pytest.mark.parametrize("delimiter", DELIMITERS, ids=repr)
@pytest.mark.parametrize("read_size", [1, 2, 3, 5, 8, 13, 1 << 16])
def test_each_delimiter_reads_as_csv_reader_reads_it(monkeypatch, delimiter, read_size):
    monkeypatch.setattr("handlers.producer.csv_stream.READ_SIZE", read_size)
    data = delimited(delimiter)
    assert read_records(data, read_size, delimiter) == reference_records(data, delimiter)


@pytest.mark.parametrize("delimiter", DELIMITERS, ids=repr)
@pytest.mark.parametrize("read_size", [1, 3, 1 << 16])
def test_resuming_after_each_record_reads_the_same_tail_with_each_delimiter(monkeypatch, delimiter, read_size):
    monkeypatch.setattr("handlers.producer.csv_stream.READ_SIZE", read_size)
    assert_resumes_after_each_record(delimited(delimiter), read_size, delimiter)


@pytest.mark.parametrize("delimiter", DELIMITERS, ids=repr)
@pytest.mark.parametrize("limit", [6, 12, 24, 40])
@pytest.mark.parametrize("read_size", [1, 5, 1 << 16])
def test_an_oversized_record_ends_where_csv_reader_ends_it_with_each_delimiter(
    monkeypatch, delimiter, limit, read_size
):
    data = delimited(delimiter)
    full = reference_records(data, delimiter)
    monkeypatch.setattr("handlers.producer.csv_stream.MAX_RECORD_BYTES", limit)
    monkeypatch.setattr("handlers.producer.csv_stream.READ_SIZE", read_size)
    limited = list(iter_records(Trickle(data, read_size), delimiter=delimiter))
    assert [(r.line, r.end_offset, r.end_line) for r in limited] == [whole[1:] for whole in full]
    starts = [0] + [whole[2] for whole in full[:-1]]
    for record, start, whole in zip(limited, starts, full, strict=True):
        size = record.end_offset - start
        assert (record.fields, record.oversized) == (([], size) if size > limit else (whole[0], 0)), record.line
    assert any(record.oversized for record in limited)


# A line of the file's delimiters and spaces is blank; a line of another delimiter is one cell.
# Neither is first or last in the block, where it would be found another way.
@pytest.mark.parametrize(
    ("delimiter", "blank", "not_blank"),
    [
        (",", ",, ,", ";;"),
        (";", ";; ;", "||"),
        ("\t", "\t \t", "||"),
        ("|", "|| |", ";;"),
    ],
    ids=repr,
)
def test_a_line_of_its_delimiters_and_spaces_is_blank_and_of_other_delimiters_is_a_cell(delimiter, blank, not_blank):
    d = delimiter
    data = f"name{d}mail\nAnn{d}a@example.com\n{blank}\n{not_blank}\nBob{d}b@example.com\n".encode()
    (block,) = blocks(io.BytesIO(data), delimiter=delimiter)
    assert isinstance(block, LineRecords), "a block of one-line records, read without csv.reader"
    assert [(fields, blank) for fields, _line, _end, _end_line, _size, blank in block.records()] == [
        (["name", "mail"], False),
        (["Ann", "a@example.com"], False),
        (blank.split(delimiter), True),
        ([not_blank], False),
        (["Bob", "b@example.com"], False),
    ]


@pytest.mark.parametrize(
    ("delimiter", "blank"), [(",", ",, ,"), (";", ";; ;"), ("\t", "\t \t"), ("|", "|| |")], ids=repr
)
def test_a_blank_first_line_of_a_block_is_blank_with_each_delimiter(delimiter, blank):
    data = f"{blank}\nname{delimiter}mail\nAnn{delimiter}a@example.com\n".encode()
    (block,) = blocks(io.BytesIO(data), delimiter=delimiter)
    assert isinstance(block, LineRecords)
    assert list(block.blank()) == [True, False, False]


@pytest.mark.parametrize("delimiter", DELIMITERS, ids=repr)
def test_a_block_of_one_line_records_splits_its_cells_at_the_delimiter(delimiter):
    others = "".join(other for other in DELIMITERS if other != delimiter)
    data = f"name{delimiter}mail\nAnn {others}{delimiter}a@example.com\nBob{delimiter}b@example.com\n".encode()
    (block,) = blocks(io.BytesIO(data), delimiter=delimiter)
    assert isinstance(block, LineRecords)
    assert block.cells(2) == ["name", "mail", f"Ann {others}", "a@example.com", "Bob", "b@example.com"]
    assert block.cells(3) is None


@pytest.mark.parametrize(
    ("delimiter", "rule"),
    [(",", "','"), (";", "';'"), ("\t", "a tab"), ("|", "'|'")],
    ids=repr,
)
@pytest.mark.parametrize("limit", [4, 1 << 20])
def test_text_after_a_closing_quote_names_the_files_delimiter(monkeypatch, delimiter, rule, limit):
    monkeypatch.setattr("handlers.producer.csv_stream.MAX_RECORD_BYTES", limit)  # 4: read by the byte scanner
    data = f'name{delimiter}mail\n"ab"c{delimiter}x@example.com\n'.encode()
    assert read_problem(data, 1 << 16, delimiter) == f"not CSV: {rule} expected after '\"' (record starting on line 2)"


def _is_utf8_text(data: bytes) -> bool:
    try:
        return b"\x00" not in data and bool(data.decode("utf-8"))
    except UnicodeDecodeError:
        return False


# How a message names the delimiter `csv.reader` expected after a closing quote.
QUOTE_RULE = {",": "','", ";": "';'", "\t": "a tab", "|": "'|'"}


def reference_outcome(data: bytes, delimiter: str) -> tuple[list[tuple[list[str], int, int, int]], str | None]:
    """`reference_records` up to where `csv.reader` fails, and then the problem the reader must
    report: the rule broken, in a message's words, and the line the record starts on."""
    start = len(BOM) if data.startswith(BOM) else 0
    lines = io.StringIO(data[start:].decode("utf-8"), newline="").readlines()
    ends = list(itertools.accumulate((len(line.encode()) for line in lines), initial=start))
    reader = csv.reader(iter(lines), delimiter=delimiter, strict=True)
    records: list[tuple[list[str], int, int, int]] = []
    try:
        for fields in reader:
            records.append((fields, (records[-1][3] if records else 0) + 1, ends[reader.line_num], reader.line_num))
    except csv.Error as error:
        quote_then_text = f"'{delimiter}' expected after '\"'"
        rule = f"{QUOTE_RULE[delimiter]} expected after '\"'" if str(error) == quote_then_text else str(error)
        return records, f"not CSV: {rule} (record starting on line {(records[-1][3] if records else 0) + 1})"
    return records, None


def read_outcome(
    data: bytes, read_size: int, delimiter: str
) -> tuple[list[tuple[list[str], int, int, int]], str | None]:
    records = []
    try:
        for r in iter_records(Trickle(data, read_size), delimiter=delimiter):
            records.append((r.fields, r.line, r.end_offset, r.end_line))
    except FileProblem as problem:
        return records, str(problem)
    return records, None


@pytest.mark.parametrize(
    "path", [path for path in CORPUS_FILES if _is_utf8_text(path.read_bytes())], ids=lambda path: path.name
)
@pytest.mark.parametrize("delimiter", DELIMITERS, ids=repr)
@pytest.mark.parametrize("read_size", [3, 1 << 16])
def test_every_corpus_text_file_reads_as_csv_reader_reads_it_with_each_delimiter(
    monkeypatch, path, delimiter, read_size
):
    monkeypatch.setattr("handlers.producer.csv_stream.READ_SIZE", read_size)
    data = path.read_bytes()
    assert read_outcome(data, read_size, delimiter) == reference_outcome(data, delimiter)
