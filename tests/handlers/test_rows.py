"""Header matching and row validation."""

import pytest

from handlers.common.chunks import Row
from handlers.producer.csv_stream import FileProblem, Record
from handlers.producer.reports import neutralise
from handlers.producer.rows import Rejected, parse_header, validate_row


def test_header_is_matched_case_insensitively_after_trimming_and_accepts_email_for_mail():
    header = parse_header([" Phone ", "NAME", "Email", "dept", "  "])
    assert (header.name, header.mail, header.phone) == (1, 2, 0)
    assert header.extra == ("dept", "")
    assert header.width == 5


def test_phone_column_is_optional():
    header = parse_header(["mail", "name"])
    assert header.phone is None
    assert validate_row(header, ["a@b.co", "Ann"], 1, 2) == Row(1, "a@b.co", "Ann", None)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (["name", "phone"], "incomplete header: missing mail column"),
        (["mail"], "incomplete header: missing name column"),
        ([], "incomplete header: missing name and mail column"),
        (["name", "mail", "email"], "header names the mail column more than once: 'mail' \\(column 2\\), 'email'"),
        (["Name", "mail", " name"], "header names the name column more than once"),
    ],
)
def test_header_without_exactly_one_name_and_mail_fails_the_file(fields, reason):
    with pytest.raises(FileProblem, match=reason):
        parse_header(fields)


def test_rows_are_normalised():
    header = parse_header(["name", "mail", "phone"])
    assert validate_row(header, ["  Ann ", " Ann@Example.COM ", "(01) 234-5678"], 7, 9) == Row(
        7, "ann@example.com", "Ann", "012345678"
    )


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (["Ann", "ann@example.com"], "has 2 fields; the header has 3"),
        (["Ann", "ann@example.com", "1", "extra"], "has 4 fields; the header has 3"),
        (["", "ann@example.com", ""], "name is empty"),
        (["Ann", "not-an-email", ""], "not a valid email address"),
        (["Ann", "ann@example.com", "12"], "6 to 15 digits"),
    ],
)
def test_invalid_rows_are_rejected_with_their_number_line_and_reason(fields, reason):
    result = validate_row(parse_header(["name", "mail", "phone"]), fields, 4, 6)
    assert isinstance(result, Rejected)
    assert (result.row, result.line, result.fields) == (4, 6, fields)
    assert reason in result.reason


def test_blank_lines_and_empty_cells_only_are_not_rows():
    def record(fields, oversized=0):
        return Record(fields, 1, 10, 1, oversized)

    assert record([]).blank and record(["", "  ", ""]).blank
    assert not record(["", "x"]).blank
    assert not record([], oversized=2_000_000).blank, "a record too long to read is a row, rejected"


def test_header_errors_never_quote_a_cell():
    # A file without a header: its first row is somebody's personal data.
    with pytest.raises(FileProblem) as failure:
        parse_header(["john.doe@example.com", "john doe", "+447700900123"])
    assert str(failure.value) == (
        "incomplete header: missing name and mail column(s); none of the first row's 3 cells is named"
        " 'name', 'mail', 'email'"
    )


@pytest.mark.parametrize(
    "fields", [["Ann", "Not An Email", ""], ["Ann", "ann@example.com", "not a phone <script>"], ["", "x@y.co", ""]]
)
def test_reject_reasons_never_quote_a_cell(fields):
    result = validate_row(parse_header(["name", "mail", "phone"]), fields, 1, 2)
    assert isinstance(result, Rejected)
    assert not any(cell.strip() and cell.strip().lower() in result.reason.lower() for cell in fields), result.reason


@pytest.mark.parametrize(
    "cell",
    [
        "=1+1",
        "+1",
        "-1",
        "@SUM(A1)",
        "\tx",
        "\rx",
        "\n=1+1",
        " =1+1",
        "\u00a0=1+1",
        "\u200b=1+1",
        "\ufeff@SUM(A1)",
        "＝1+1",
        "＋1",
        "－1",
        "＠SUM(A1)",
        " \u200b ＝HYPERLINK()",
    ],
)
def test_cells_a_spreadsheet_would_run_are_neutralised_in_reports(cell):
    assert neutralise(cell) == f"'{cell}"


@pytest.mark.parametrize("cell", ["Ann O'Neil", " Ann", "", "   ", "a=b", "John-Smith", "\u200bAnn"])
def test_ordinary_cells_are_kept_as_they_are(cell):
    assert neutralise(cell) == cell
