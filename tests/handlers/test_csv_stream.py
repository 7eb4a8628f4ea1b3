"""Reading CSV records with exact byte offsets, from any record boundary."""

import io

import pytest

from handlers.producer.csv_stream import FileProblem, iter_records


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
