"""The oracle's reading of a typed schema against answers worked out by hand: the products scenarios
prove nothing if its rules for numbers, booleans and dates are wrong."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.reliability.oracle import (
    COMPLETE,
    COMPLETE_WITH_REJECTS,
    FAILED,
    FALSE_SPELLINGS,
    PRODUCTS,
    TRUE_SPELLINGS,
    ExpectedItem,
    ExpectedJob,
    Rules,
    Upload,
    Value,
    expect,
    generate_products,
    read_file,
)

BROKEN = "broken"


def normal_form(column: dict[str, Any], cell: str) -> Value | str:
    """What the oracle makes of `cell` in a one-row file of a schema keyed by `k` with `column`: its
    normal form, or `BROKEN` when the row is rejected."""
    rules = Rules.of({"name": "t", "key": "k", "columns": [{"name": "k", "type": "text"}, column]})
    out = io.StringIO()
    csv.writer(out).writerows([("k", column["name"]), ("K", cell)])
    reading = read_file(out.getvalue().encode(), rules)
    assert reading.rows_total == 1
    return reading.items["K"][0][column["name"]] if reading.rows_valid else BROKEN


PRICE = {"name": "price", "type": "decimal", "min": "0", "max": 1000}
AMOUNT = {"name": "amount", "type": "decimal"}
STOCK = {"name": "stock", "type": "integer", "min": 0}
ACTIVE = {"name": "active", "type": "boolean"}
LAUNCHED = {"name": "launched", "type": "date"}
AT = {"name": "at", "type": "datetime"}
STATUS = {"name": "status", "type": "enum", "values": ["draft", "live", "Retired"]}
CODE = {"name": "code", "type": "text", "maxLength": 4}

HAND_WORKED = [
    # decimal: exact, no exponent, no leading or trailing zeros, no sign on zero; within min/max
    (PRICE, "12.50", "12.5"),
    (PRICE, "0012.30", "12.3"),
    (PRICE, "+7", "7"),
    (PRICE, ".25", "0.25"),
    (PRICE, "5.", "5"),
    (PRICE, "100.000", "100"),
    (PRICE, "-0.00", "0"),
    (PRICE, " 1000 ", "1000"),
    (PRICE, "1000.001", BROKEN),
    (PRICE, "-0.01", BROKEN),
    (PRICE, "1e3", BROKEN),
    (PRICE, "12,5", BROKEN),
    (PRICE, "1 000", BROKEN),
    (PRICE, ".", BROKEN),
    (AMOUNT, "-1234567890123456789012345678901234567.8", "-1234567890123456789012345678901234567.8"),
    (AMOUNT, "1234567890123456789012345678901234567.89", BROKEN),  # 39 significant digits
    (AMOUNT, "1200000000000000000000000000000000000000000", "1200000000000000000000000000000000000000000"),
    (AMOUNT, "0." + "0" * 129 + "1", "0." + "0" * 129 + "1"),  # 1E-130, DynamoDB's least
    (AMOUNT, "0." + "0" * 130 + "1", BROKEN),
    # integer: an optional sign and digits, within min/max
    (STOCK, "007", 7),
    (STOCK, "+3", 3),
    (STOCK, "-0", 0),
    (STOCK, "9" * 38, int("9" * 38)),
    (STOCK, "9" * 39, BROKEN),
    (STOCK, "3.0", BROKEN),
    (STOCK, "-1", BROKEN),
    (STOCK, "1 000", BROKEN),
    (STOCK, "\u0661\u0662", BROKEN),  # Arabic-Indic digits are not ASCII digits
    # boolean: the documented spellings, any case
    *((ACTIVE, spelling, True) for spelling in ("TRUE", "T", "Yes", "y", "1", "oN")),
    *((ACTIVE, spelling, False) for spelling in ("False", "f", "NO", "n", "0", "Off")),
    (ACTIVE, "maybe", BROKEN),
    (ACTIVE, "2", BROKEN),
    (ACTIVE, "yes please", BROKEN),
    (ACTIVE, "", None),
    # date: ISO 8601's calendar date, a real one
    (LAUNCHED, "2024-02-29", "2024-02-29"),
    (LAUNCHED, "2023-02-29", BROKEN),
    (LAUNCHED, "2024-13-01", BROKEN),
    (LAUNCHED, "2024-1-05", BROKEN),
    (LAUNCHED, "20240105", BROKEN),
    (LAUNCHED, "2024/01/05", BROKEN),
    (LAUNCHED, "2024-01-05T00:00Z", BROKEN),
    # datetime: with an offset, to UTC and the millisecond
    (AT, "2026-12-01T09:30:00+01:00", "2026-12-01T08:30:00.000Z"),
    (AT, "2026-12-01T23:30:00.5-02:00", "2026-12-02T01:30:00.500Z"),
    (AT, "2026-12-01T09:30Z", "2026-12-01T09:30:00.000Z"),
    (AT, "2026-12-01T09:30:00", BROKEN),
    (AT, "2026-12-01T09:30:00.1234Z", BROKEN),
    (AT, "2026-12-01", BROKEN),
    (AT, "0001-01-01T00:00:00+01:00", BROKEN),  # before year 1 in UTC
    # enum: case-insensitive, stored as declared
    (STATUS, "LIVE", "live"),
    (STATUS, " retired ", "Retired"),
    (STATUS, "archived", BROKEN),
    # text: trimmed, at most maxLength characters
    (CODE, "  ab  ", "ab"),
    (CODE, "abcd", "abcd"),
    (CODE, "abcde", BROKEN),
]


@pytest.mark.parametrize(("column", "cell", "normal"), HAND_WORKED, ids=lambda v: repr(v)[:40])
def test_each_type_keeps_its_rule_and_normal_form(column: dict[str, Any], cell: str, normal: Value | str) -> None:
    assert normal_form(column, cell) == normal


def test_every_documented_boolean_spelling_is_read_in_any_case() -> None:
    for spelling in TRUE_SPELLINGS:
        assert normal_form(ACTIVE, spelling.upper()) is True
        assert normal_form(ACTIVE, spelling) is True
    for spelling in FALSE_SPELLINGS:
        assert normal_form(ACTIVE, spelling.upper()) is False
        assert normal_form(ACTIVE, spelling) is False


MIXED = (
    "\ufeffArticle Number,TITLE,price,Stock,active,Launch-Date,warehouse\r\n"
    "A-1,Lamp,12.50,007,Yes,2024-02-29,W1\r\n"  # row 1: valid
    "\r\n"  # blank
    ' A-2 ,"Desk, oak",,,,,\r\n'  # row 2: valid, the SKU trimmed, every optional value absent
    ",,,,,,\r\n"  # blank: only empty cells
    "A-3,Chair,-0.01,1,y,2024-01-01,\r\n"  # row 3: price below its minimum
    "A-4,Stool,1e3,1,y,,\r\n"  # row 4: a price with an exponent
    "A-5,Shelf,0.5,3.0,,,\r\n"  # row 5: a stock that is not whole
    "A-6,Rug,.5,+2,maybe,,\r\n"  # row 6: an odd boolean
    "A-7,Vase,,,,2023-02-29,\r\n"  # row 7: no such date
    ",Ghost,1,1,1,,\r\n"  # row 8: empty SKU
    "A-8,  ,1,1,1,,\r\n"  # row 9: empty title
    "a-1,Lamp (lower),-0,-0,OFF,,\r\n"  # row 10: valid, another key than A-1; zero without a sign
    'A-1,"Lamp\nSecond",0100.10,0,F,2031-12-31\r\n'  # row 11: ragged (6 fields), so A-1 keeps row 1 here
    "A-1,Lamp v2,100.000,+3,TRUE,1999-12-31,W2\r\n"  # row 12: valid, the later row for A-1 wins
)


def test_a_mixed_products_file_is_counted_and_its_last_valid_row_per_sku_wins() -> None:
    expectation = expect([Upload("uploads/mixed.csv", MIXED.encode())], PRODUCTS)

    assert expectation.jobs == [ExpectedJob("uploads/mixed.csv", COMPLETE_WITH_REJECTS, 12, 4, 8, 2)]
    empty = {"price": None, "stock": None, "active": None, "launched": None}
    assert dict(expectation.items) == {
        "A-1": ExpectedItem(
            {"sku": "A-1", "title": "Lamp v2", "price": "100", "stock": 3, "active": True, "launched": "1999-12-31"},
            "uploads/mixed.csv",
            0,
            12,
        ),
        "A-2": ExpectedItem({"sku": "A-2", "title": "Desk, oak", **empty}, "uploads/mixed.csv", 0, 2),
        "a-1": ExpectedItem(
            {"sku": "a-1", "title": "Lamp (lower)", "price": "0", "stock": 0, "active": False, "launched": None},
            "uploads/mixed.csv",
            0,
            10,
        ),
    }


def test_the_later_upload_wins_but_not_with_a_rejected_row_and_keeps_no_value_of_the_earlier() -> None:
    first = b"sku,title,price,active\nP-1,One,1.10,yes\nP-2,Two,2.20,no\n"
    second = b"title,sku\nOne again,P-1\nTwo again,P-2 ,\n"  # P-2's row is ragged: rejected

    expectation = expect([Upload("uploads/1.csv", first), Upload("uploads/2.csv", second)], PRODUCTS)

    assert expectation.items["P-1"] == ExpectedItem(
        {"sku": "P-1", "title": "One again", "price": None, "stock": None, "active": None, "launched": None},
        "uploads/2.csv",
        1,
        1,
    )
    assert expectation.items["P-2"].values["price"] == "2.2" and expectation.items["P-2"].upload == 0
    assert [job.status for job in expectation.jobs] == [COMPLETE, COMPLETE_WITH_REJECTS]


def test_header_problems_of_the_schema_fail_the_job() -> None:
    bodies = [
        b"sku,price\nP-1,1\n",  # no title: required
        b"title,price\nOne,1\n",  # no key
        b"sku,Article_Number,title\nP-1,P-1,One\n",  # the key named twice, once by its alias
        b"sku,title,PRICE,price\nP-1,One,1,1\n",  # price twice
    ]

    expectation = expect([Upload(f"uploads/{n}.csv", body) for n, body in enumerate(bodies)], PRODUCTS)

    assert [job.status for job in expectation.jobs] == [FAILED] * len(bodies)
    assert dict(expectation.items) == {}


def test_stored_values_carry_dynamodbs_types() -> None:
    columns = {column.name: column for column in PRODUCTS.columns}

    assert columns["price"].stored("12.5") == {"N": "12.5"}
    assert columns["stock"].stored(0) == {"N": "0"}
    assert columns["active"].stored(False) == {"BOOL": False}
    assert columns["launched"].stored("2024-02-29") == {"S": "2024-02-29"}
    assert columns["launched"].stored(None) is None


def test_scope_is_a_skus_prefix_before_its_first_dash() -> None:
    assert PRODUCTS.in_scope("ovl-p12", "ovl")
    assert PRODUCTS.in_scope("ovl-P12", "ovl")
    assert not PRODUCTS.in_scope("ovl2-p12", "ovl")
    assert not PRODUCTS.in_scope("OVL-p12", "ovl")


def test_generated_products_files_hold_the_rows_asked_for_and_break_exactly_the_rows_meant_to() -> None:
    shared = ["g-s1", "g-s2"]
    body = generate_products("g", 1200, seed=7, invalid_every=7, shared=shared)

    reading = read_file(body, PRODUCTS)

    assert body == generate_products("g", 1200, seed=7, invalid_every=7, shared=shared)
    assert (reading.rows_total, reading.rows_rejected) == (1200, 1200 // 7)
    assert reading.blank_lines == 1200 // 50
    assert set(shared) <= set(reading.items)
    assert all(PRODUCTS.in_scope(sku, "g") for sku in reading.items)
    # Some rows repeat a SKU: fewer items than valid rows; some spell an earlier one with `P`.
    assert len(reading.items) < reading.rows_valid
    assert any("-P" in sku for sku in reading.items)
    values = [values for values, _ in reading.items.values()]
    # Every type is there in several normal forms, and absent now and then.
    assert {type(v["price"]) for v in values} == {str, type(None)}
    assert {type(v["stock"]) for v in values} == {int, type(None)}
    assert {v["active"] for v in values} == {True, False, None}
    assert any(v["launched"] is None for v in values) and any(v["launched"] for v in values)
