"""How an upload is read: its key and the stack fix gzip, encoding and (maybe) the delimiter; otherwise
the header line decides the delimiter, and a header no delimiter fits fails the file by counts."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from handlers.common.schema import DEFAULT_SCHEMA, Format
from handlers.producer.csv_stream import READ_SIZE, FileProblem
from handlers.producer.dialect import FileFormat, Reading, detect, reading_for
from handlers.producer.ingest import open_upload
from handlers.producer.rows import parse_header

UNFIXED = Reading(gzip=False, encoding="utf-8", delimiter=None)


def header_problem(fields: list[str]) -> str | None:
    try:
        parse_header(fields, DEFAULT_SCHEMA)
    except FileProblem as problem:
        return str(problem)
    return None


def detected(data: bytes, reading: Reading = UNFIXED) -> tuple[FileFormat, bytes]:
    fmt, stream = detect(io.BytesIO(data), reading, header_problem)
    return fmt, stream.read(len(data) + 1)


@pytest.mark.parametrize(
    ("key", "fmt", "expected"),
    [
        ("uploads/a.csv", Format(), Reading(False, "utf-8", None)),
        ("uploads/a.csv.gz", Format(), Reading(True, "utf-8", None)),
        ("uploads/a.tsv", Format(), Reading(False, "utf-8", "\t")),
        ("uploads/a.tsv.gz", Format(encoding="cp1252"), Reading(True, "cp1252", "\t")),
        # The stack's delimiter is the stack's, whatever the key says.
        ("uploads/a.tsv", Format(delimiter=";"), Reading(False, "utf-8", ";")),
        ("uploads/a.TSV", Format(), Reading(False, "utf-8", None)),
    ],
)
def test_the_key_and_the_stack_fix_what_they_can(key, fmt, expected):
    assert reading_for(key, fmt) == expected


@pytest.mark.parametrize(
    ("header", "delimiter"),
    [
        ("name,mail,phone", ","),
        ("name;mail;phone", ";"),
        ("name\tmail\tphone", "\t"),
        ("name|mail|phone", "|"),
        ("Full Name;E-mail;Phone Number", ";"),
        # A quoted cell holding another delimiter does not make that one fit.
        ('name,mail,"phone; mobile"', ","),
        ('name;mail;"notes, more"', ";"),
    ],
)
def test_the_header_line_decides_the_delimiter(header, delimiter):
    data = f"{header}\r\nAda,ada@example.com,1\r\n".encode()
    fmt, replayed = detected(data)
    assert fmt == FileFormat(gzip=False, encoding="utf-8", delimiter=delimiter, detected=True)
    assert replayed == data  # every byte looked at is read again


def test_blank_lines_and_a_bom_before_the_header_are_looked_past():
    data = b"\xef\xbb\xbf;;\r\n\r\n  \r\nname;mail\r\nAda;ada@example.com\r\n"
    fmt, replayed = detected(data)
    assert fmt.delimiter == ";"
    assert replayed == data


def test_a_header_with_a_quoted_line_end_is_read_to_its_end():
    data = b'"Full\nName";"mail"\nAda;ada@example.com\n'
    assert detected(data)[0].delimiter == ";"


def test_a_header_past_the_first_read_is_found():
    data = b"\n" * (3 * READ_SIZE) + b"name|mail\nAda|ada@example.com\n"
    fmt, replayed = detected(data)
    assert fmt.delimiter == "|"
    assert replayed == data


def test_a_fixed_delimiter_reads_nothing():
    stream = io.BytesIO(b"name;mail\n")
    fmt, same = detect(stream, Reading(True, "cp1252", ","), header_problem)
    assert fmt == FileFormat(gzip=True, encoding="cp1252", delimiter=",", detected=False)
    assert same is stream and stream.tell() == 0


def test_one_column_headers_are_read_with_the_default():
    # Every delimiter gives the same one column: nothing to choose, the default reads it.
    problem = header_problem(["mail"])
    assert problem is not None
    with pytest.raises(FileProblem) as refused:
        detected(b"mail\nada@example.com\n")
    assert str(refused.value) == (
        f"{problem}; the header line splits at none of the delimiters tried (comma, semicolon, tab, pipe)"
    )


def test_one_splitting_delimiter_is_the_files_even_when_its_header_lacks_a_column():
    # The file is a comma file; its header's own problem is then the file's, as it always was.
    fmt, _ = detected(b"name,phone\nAda,1\n")
    assert fmt.delimiter == ","


def test_a_header_no_delimiter_fits_fails_by_counts_never_cells():
    data = b"Secret Person;x,secret@example.com|y\n"
    with pytest.raises(FileProblem) as refused:
        detected(data)
    message = str(refused.value)
    assert message == (
        "the header line splits into the schema's columns at none of the delimiters tried: comma gives 2 columns,"
        " semicolon gives 2 columns, pipe gives 2 columns (tab: 1 column); set csv-ingest:schema.format.delimiter"
        " to the file's delimiter to see which column its header lacks"
    )
    assert "Secret" not in message and "secret" not in message


def test_a_header_two_delimiters_fit_is_ambiguous():
    # semicolon: name | mail | x|name|mail; pipe: name;mail;x | name | mail: both name each column once.
    with pytest.raises(FileProblem) as refused:
        detected(b"name;mail;x|name|mail\n")
    assert str(refused.value) == (
        "ambiguous header: it splits into the schema's columns at semicolon (3 columns) and pipe (3 columns);"
        " set csv-ingest:schema.format.delimiter to the file's delimiter"
    )


def test_the_format_kept_on_the_checkpoint_reads_back():
    fmt = FileFormat(gzip=True, encoding="utf-16", delimiter="\t", detected=True)
    assert fmt.to_dict() == {"gzip": True, "encoding": "utf-16", "delimiter": "tab", "detected": True}
    assert FileFormat.from_dict(fmt.to_dict()) == fmt
    # A checkpoint from before formats read a plain comma file.
    assert FileFormat.from_dict(None) == FileFormat(gzip=False, encoding="utf-8", delimiter=",")
    assert FileFormat.from_dict(None).plain and not fmt.plain


@pytest.mark.parametrize(
    ("key", "stack", "data", "how"),
    [
        (
            "uploads/u.csv",
            Format(delimiter=";"),
            b"name,mail\nAda,ada@example.com\n",
            "the file was read as semicolon-delimited, as csv-ingest:schema.format.delimiter says",
        ),
        (
            "uploads/u.tsv",
            Format(),
            b"name,mail\nAda,ada@example.com\n",
            "the file was read as tab-delimited, as its .tsv name says (a .csv name has it detected)",
        ),
        (
            "uploads/u.csv",
            Format(),
            b"Nom;Courriel\nAda;ada@example.com\n",
            "the file was read as semicolon-delimited, the only one of comma, semicolon, tab, pipe that splits its"
            " header line",
        ),
    ],
)
def test_a_header_missing_columns_says_how_its_delimiter_was_chosen(key, stack, data, how):
    schema = replace(DEFAULT_SCHEMA, format=stack)
    with pytest.raises(FileProblem) as refused:
        open_upload(io.BytesIO(data), key, schema, 1 << 20)
    message = str(refused.value)
    assert message.startswith("incomplete header: missing ") and message.endswith(f"; {how}")
    assert "Ada" not in message and "Courriel" not in message


def test_other_header_problems_are_not_about_the_delimiter():
    with pytest.raises(FileProblem) as refused:
        open_upload(io.BytesIO(b"name,mail,email\n"), "uploads/u.csv", DEFAULT_SCHEMA, 1 << 20)
    assert str(refused.value) == "header names the mail column more than once: 'mail' (column 2), 'email' (column 3)"
