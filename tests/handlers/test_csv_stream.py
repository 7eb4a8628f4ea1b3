"""Reading CSV records with exact byte offsets, from any record boundary."""

import io

import pytest

from handlers.producer.csv_stream import MAX_RECORD_BYTES, FileProblem, iter_records


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


def test_utf8_character_split_across_reads_is_fine():
    data = "name,mail\nÉmile,e@example.fr\n".encode()
    assert list(iter_records(Trickle(data, 1)))[1].fields == ["Émile", "e@example.fr"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'name,mail\n"unterminated,x@example.com\n', "not CSV: unexpected end of data"),
        (b'name,mail\n"ab"c,x@example.com\n', "not CSV: ',' expected after '\"' \\(record starting on line 2\\)"),
        ("name,mail\nx,y\n".encode("utf-16-le"), "not a text CSV file: NUL byte at byte offset 1 \\(line 1\\)"),
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
        (b'"' + b"x" * 2_000_000 + b'"y\n', "not CSV: ',' expected after '\"'"),
        (b"x" * 2_000_000 + b"\xff\n", "not UTF-8: the record starting on line 2"),
        (b"x" * 2_000_000 + b"\x00\n", "not a text CSV file: NUL byte in the record starting on line 2"),
    ],
)
def test_an_oversized_record_must_still_be_csv_text(tail, reason):
    with pytest.raises(FileProblem, match=reason):
        list(iter_records(io.BytesIO(b"name,mail\n" + tail)))


def test_a_record_too_long_even_to_skip_fails_the_file(monkeypatch):
    monkeypatch.setattr("handlers.producer.csv_stream.MAX_SKIPPED_RECORD_BYTES", 3_000_000)
    with pytest.raises(FileProblem, match="not a CSV of rows: the record starting on line 2 is over 3000000 bytes"):
        list(iter_records(io.BytesIO(b"name,mail\n" + b"x" * 3_000_001 + b"\nBob,bob@example.com\n")))
