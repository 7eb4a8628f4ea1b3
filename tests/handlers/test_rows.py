"""Header matching and row validation."""

import json
import random

import pytest

from handlers.common.chunks import Row
from handlers.common.schema import DEFAULT_SCHEMA
from handlers.producer.csv_stream import FileProblem, Record
from handlers.producer.reports import neutralise
from handlers.producer.rows import Header, Rejected, normalized, normalized_rows, validate_row
from handlers.producer.rows import parse_header as parse_header_by
from tests.handlers.producer_schemas import PRODUCTS


def parse_header(fields):
    """The header read by the default schema (name, mail or email, phone)."""
    return parse_header_by(fields, DEFAULT_SCHEMA)


def test_header_is_matched_case_insensitively_after_trimming_and_accepts_email_for_mail():
    header = parse_header([" Phone ", "NAME", "Email", "dept", "  "])
    assert header.positions == (1, 2, 0), "the schema's columns name, mail, phone"
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
    restored = Header.from_dict(header.to_dict(), DEFAULT_SCHEMA)
    assert restored == header and restored.width == len(cells) + 3
    assert restored.columns[:2] == (" Name", "MAIL"), "the read columns keep their spelling (the rejects report's)"


def test_phone_column_is_optional():
    header = parse_header(["mail", "name"])
    assert header.positions[2] is None
    assert validate_row(header, ["a@b.co", "Ann"], 1, 2) == Row(1, ("Ann", "a@b.co", None))


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
        7, ("Ann", "ann@example.com", "012345678")
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
        " 'name', 'Full Name', 'mail', 'email', 'Email Address'"
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


# --- another schema: products, keyed by sku -------------------------------------------------------


def test_a_products_header_is_matched_by_name_and_alias_ignoring_case_spaces_dashes_and_underscores():
    header = parse_header_by([" Product-ID ", "NAME", "Price", "notes", "QTY", "e_mail"], PRODUCTS)
    assert header.positions == (0, 1, 2, 4, None, None, None, None), "sku, title, price, stock; the rest absent"
    assert header.extra == ("notes", "e_mail")
    assert header.columns[:3] == (" Product-ID ", "NAME", "Price"), "the read columns keep their spelling"


def test_the_default_schema_matches_spellings_ignoring_dashes_and_underscores_too():
    assert parse_header(["Nick_Name", "E-Mail", "name"]).positions == (2, 1, None)
    # The default's aliases, as spreadsheets spell them (README "CSV rules").
    assert parse_header(["Full_Name", "e_mail", "phone-number"]).positions == (0, 1, 2)
    assert parse_header(["Phone Number", "Email Address", "FULL NAME"]).positions == (2, 1, 0)


def test_a_products_header_without_its_key_column_names_the_column_and_every_spelling():
    with pytest.raises(FileProblem) as failure:
        parse_header_by(["title", "price", "ann@example.com"], PRODUCTS)
    assert str(failure.value) == (
        "incomplete header: missing sku column(s); none of the first row's 3 cells is named"
        " 'sku', 'product id', 'item_code'"
    )


def test_a_products_header_missing_required_columns_lists_them_in_the_schemas_order():
    with pytest.raises(FileProblem, match=r"missing title and price column\(s\)"):
        parse_header_by(["stock", "sku"], PRODUCTS)


def test_a_products_header_naming_a_column_twice_fails_the_file():
    with pytest.raises(FileProblem) as failure:
        parse_header_by(["sku", "title", "Item Code", "price"], PRODUCTS)
    assert str(failure.value) == "header names the sku column more than once: 'sku' (column 1), 'Item Code' (column 3)"


PRODUCT_FIELDS = ["price", "sku", "title", "stock", "active", "since", "status", "at"]


def test_a_products_row_is_normalised_to_typed_values_in_the_schemas_order():
    header = parse_header_by(PRODUCT_FIELDS, PRODUCTS)
    cells = [" 012.50 ", " A-1 ", "Lamp", "+7", "Yes", "2026-01-02", " LIVE ", "2026-12-06T15:43:50+01:00"]
    assert validate_row(header, cells, 3, 4) == Row(
        3, ("A-1", "Lamp", "12.5", 7, True, "2026-01-02", "live", "2026-12-06T14:43:50.000Z")
    )


def test_an_optional_column_the_file_lacks_is_none_in_every_row():
    header = parse_header_by(["sku", "title", "price"], PRODUCTS)
    assert validate_row(header, ["A-1", "Lamp", "3"], 1, 2) == Row(1, ("A-1", "Lamp", "3", *[None] * 5))


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        (["-1", "s" * 65, "", "x", "maybe", "", "", ""], "sku is 65 characters long; at most 64 allowed"),
        (["-1", "A-1", "", "x", "maybe", "", "", ""], "title is empty"),
        (["-1", "A-1", "Lamp", "x", "maybe", "", "", ""], "price is below its minimum, 0"),
        (["1", "A-1", "Lamp", "x", "maybe", "", "", ""], "stock is not a whole number"),
        (["1", "A-1", "Lamp", "", "maybe", "", "", ""], "active is not a boolean"),
        (["1", "A-1", "Lamp", "", "", "", "gone", ""], "status is not one of its 3 values"),
    ],
)
def test_a_products_row_is_rejected_for_its_key_first_then_its_columns_as_declared(cells, reason):
    result = validate_row(parse_header_by(PRODUCT_FIELDS, PRODUCTS), cells, 1, 2)
    assert isinstance(result, Rejected)
    assert result.reason.startswith(reason), result.reason


def test_the_header_kept_for_resuming_holds_the_positions_and_is_refused_by_another_schema():
    header = parse_header_by(["title", "sku", "price", "since", "notes"], PRODUCTS)
    restored = Header.from_dict(json.loads(json.dumps(header.to_dict())), PRODUCTS)
    assert restored == header and restored.positions == (1, 0, 2, None, None, 3, None, None)
    with pytest.raises(FileProblem, match="the stack's schema changed while this file was being read"):
        Header.from_dict(header.to_dict(), DEFAULT_SCHEMA)


def product_cells(rng: random.Random) -> list[str]:
    """A valid products row (in `PRODUCT_FIELDS` order) in any spelling, optional cells often empty."""

    def maybe(cell: str) -> str:
        return cell if rng.random() < 0.7 else rng.choice(["", " "])

    return [
        rng.choice(["0", "12.50", " 7 ", "0.001", "-0", "+3.0"]),
        rng.choice(["A-1", " b2 ", "SKU-\u00e9", "x" * 64]),
        rng.choice(["Lamp", " Desk ", "Ch\u00e4ir \U0001f600"]),
        maybe(rng.choice(["0", "+12", "-3", "007"])),
        maybe(rng.choice(["yes", "No", "TRUE", "0", "on"])),
        maybe(rng.choice(["2026-01-02", "1999-12-31"])),
        maybe(rng.choice(["draft", " LIVE ", "Retired"])),
        maybe(rng.choice(["2026-12-06T15:43:50Z", "2026-12-06 15:43+01:00", "2026-12-06T15:43:50.5-0230"])),
    ]


@pytest.mark.parametrize("seed", range(20))
def test_a_block_of_products_rows_normalised_by_column_is_each_row_normalised(seed):
    rng = random.Random(seed)
    header = parse_header_by(PRODUCT_FIELDS, PRODUCTS)
    rows = [product_cells(rng) for _ in range(rng.randint(1, 40))]
    by_column = normalized_rows(header, [cell for row in rows for cell in row])
    by_row = [normalized(header, row) for row in rows]
    assert by_column is not None
    assert [tuple(values) for values in zip(*by_column, strict=True)] == by_row
    # One invalid cell anywhere sends the block row by row (where its reason is found).
    broken = [list(row) for row in rows]
    broken[rng.randrange(len(broken))][rng.randrange(len(PRODUCT_FIELDS))] = (
        "x" * 300
    )  # too long a text, and no number, date or value
    assert normalized_rows(header, [cell for row in broken for cell in row]) is None
