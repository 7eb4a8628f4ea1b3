"""Header matching and row validation."""

import json

import pytest

from handlers.common.chunks import Row
from handlers.producer.csv_stream import FileProblem, Record
from handlers.producer.reports import neutralise
from handlers.producer.rows import Header, Rejected, parse_header, validate_row


def test_header_is_matched_case_insensitively_after_trimming_and_accepts_email_for_mail():
    header = parse_header([" Phone ", "NAME", "Email", "dept", "  "])
    assert (header.name, header.mail, header.phone) == (1, 2, 0)
    assert header.extra == ("dept", "column 5"), "an empty cell names nothing: it is listed by position"
    assert header.width == 5


# Header cells the uploader may have filled with a data row (personal data), each in column 4.
NOT_NAMES = {
    "an email": "ann.smith@example.com",
    "a phone number": "+44 7700 900123",
    "a phone number without punctuation": "07700900123",
    "a number": "12.5",
    "an id with a name in it": "Ann Smith 19820417",
    "a 200-character cell": "Ann Smith lives at " + "x" * 181,
    "65 characters": "d" * 65,
    "a control character": "Dept\x07",
    "a tab": "Dept\tname",
    "a line break": "Dept\nAnn Smith",
    "a right-to-left override": "Dept\u202emoc.elpmaxe",
    "a zero-width space": "De\u200bpt",
    "a no-break space": "Ann\u00a0Smith",
    "an email with a fullwidth at sign": "john\uff20gmail.com",
    "a number in circled digits": "\u2460\u2461\u2462\u2463\u2464\u2465\u2466\u2467",
}


@pytest.mark.parametrize("cell", NOT_NAMES.values(), ids=NOT_NAMES.keys())
def test_an_ignored_header_cell_that_does_not_look_like_a_name_is_listed_by_position(cell):
    header = parse_header(["name", "mail", "phone", cell, "Department"])
    assert header.extra == ("column 4", "Department")


@pytest.mark.parametrize(
    "cell", ["Department", "Team name", "d" * 64, "Q1 notes", "Straße", "部署", "cost (€)", "Ｄｅｐｔ"]
)
def test_an_ignored_header_cell_that_looks_like_a_name_is_listed_as_written(cell):
    assert parse_header(["name", cell, "mail"]).extra == (cell,)


def test_the_header_kept_for_resuming_holds_no_ignored_cell():
    """The job record keeps the parsed header (the producer's checkpoint): what it needs of the
    ignored columns is how many there are and how they are listed, never their cells."""
    cells = list(NOT_NAMES.values())
    header = parse_header([" Name", "MAIL", *cells, "Department"])
    kept = json.dumps(header.to_dict())
    assert [cell for cell in cells if cell in kept or json.dumps(cell)[1:-1] in kept] == []
    restored = Header.from_dict(header.to_dict())
    assert restored == header and restored.width == len(cells) + 3
    assert restored.columns[:2] == (" Name", "MAIL"), "the read columns keep their spelling (the rejects report's)"


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
