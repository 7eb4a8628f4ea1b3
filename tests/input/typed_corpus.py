"""The bad-input corpus of a typed stack: a schema of every kind of typed column, the files that break
each type's rule, and what each file must end as.

Every outcome is written from the README's "Schema" section and its table of types, not from what
the code does: the key column is checked first, then the others as declared, and a row is rejected
at its first broken rule, with a reason naming the column and the rule, never the cell; each cell is
trimmed, an empty optional one is absent from the item; every other cell is stored in its type's
normal form and DynamoDB type (N for numbers, BOOL for booleans, S for the rest). The reasons below
are the type rules' words, restated here.

The files are committed under `tests/corpus/typed/`, each with SKUs of its own (`DEC-1`, `DAT-1`…),
so the items table can be checked per file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TYPED_CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "typed"
# A catalogue with a column of every typed kind, keyed by a text SKU.
TYPED_DECLARATION: Mapping[str, Any] = {
    "name": "catalog",
    "key": "sku",
    "columns": [
        {"name": "sku", "type": "text", "maxLength": 64, "aliases": ["article number"]},
        {"name": "title", "type": "text", "required": True},
        {"name": "price", "type": "decimal", "min": "0", "max": "1000"},
        {"name": "stock", "type": "integer", "min": 0},
        {"name": "active", "type": "boolean"},
        {"name": "launched", "type": "date"},
        {"name": "status", "type": "enum", "values": ["draft", "live", "retired"]},
        {"name": "updated", "type": "datetime"},
    ],
}
ATTRIBUTES = tuple(column["name"] for column in TYPED_DECLARATION["columns"])

# The type rules' reasons (README "Schema": the column, the rule; never the cell).
PRICE_ABOVE = "price is above its maximum, 1000"
PRICE_BELOW = "price is below its minimum, 0"
NOT_DECIMAL = "price is not a decimal number (digits, an optional sign and one '.')"
PRICE_DIGITS = "price has more than 38 significant digits"
NOT_WHOLE = "stock is not a whole number (digits, an optional sign)"
STOCK_BELOW = "stock is below its minimum, 0"
STOCK_DIGITS = "stock has more than 38 digits"
NOT_BOOLEAN = "active is not a boolean (true/t/yes/y/1/on or false/f/no/n/0/off)"
NOT_DATE = "launched is not a date in ISO 8601 form (YYYY-MM-DD)"
NOT_STATUS = "status is not one of its 3 values (draft, live, retired)"
NOT_DATETIME = (
    "updated is not a date and time in ISO 8601 form with a UTC offset (YYYY-MM-DDTHH:MM[:SS[.fff]] then Z or ±HH:MM)"
)
TOO_PRECISE = "updated is more precise than a millisecond"
EMPTY_KEY = "sku is empty"
EMPTY_TITLE = "title is empty"
LONG_KEY = "sku is 65 characters long; at most 64 allowed"

Wire = dict[str, Any]
"""An attribute as DynamoDB's API holds it: `{"S": "x"}`, `{"N": "12.5"}`, `{"BOOL": true}`."""


def item(
    sku: str,
    title: str,
    *,
    price: str | None = None,
    stock: str | None = None,
    active: bool | None = None,
    launched: str | None = None,
    status: str | None = None,
    updated: str | None = None,
) -> dict[str, Wire]:
    """An item as the table must hold it, attribute by attribute in DynamoDB's types (the declared
    types: numbers N, the boolean BOOL, the rest S); an attribute left None is absent."""
    stored: dict[str, Wire] = {"sku": {"S": sku}, "title": {"S": title}}
    typed = {
        "price": None if price is None else {"N": price},
        "stock": None if stock is None else {"N": stock},
        "active": None if active is None else {"BOOL": active},
        "launched": None if launched is None else {"S": launched},
        "status": None if status is None else {"S": status},
        "updated": None if updated is None else {"S": updated},
    }
    return stored | {name: value for name, value in typed.items() if value is not None}


@dataclass(frozen=True)
class TypedCase:
    """One file of the typed corpus and the outcome the rules give it."""

    name: str
    what: str
    """What it tries, in a few words."""
    status: str
    rows: tuple[int, int, int] = (0, 0, 0)
    """(rowsTotal, rowsValid, rowsRejected)."""
    blank_lines: int = 0
    rejects: tuple[tuple[int, int, str], ...] = ()
    """(row, line, reason) of each rejected row, from the rejects report."""
    error: str = ""
    """Text the `error` of a FAILED job must contain."""
    items: Mapping[str, dict[str, Wire]] = field(default_factory=dict)
    """The items the table must hold from this file, by SKU: exactly these."""
    extra_columns: tuple[str, ...] = ()
    report_cells: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    """Rejected rows whose report cells (the schema's columns the file has) are checked exactly."""

    def body(self) -> bytes:
        return (TYPED_CORPUS / self.name).read_bytes()


TYPED_CASES: tuple[TypedCase, ...] = (
    TypedCase(
        "decimal_range.csv",
        "decimals in and out of range, spelt with zeros, an exponent, a comma, a space, 39 digits",
        "COMPLETE_WITH_REJECTS",
        (11, 5, 6),
        rejects=(
            (2, 3, PRICE_ABOVE),
            (4, 5, PRICE_BELOW),
            (6, 7, NOT_DECIMAL),
            (7, 8, NOT_DECIMAL),
            (8, 9, NOT_DECIMAL),
            (10, 11, PRICE_DIGITS),
        ),
        items={
            "DEC-1": item("DEC-1", "Typed Maxprice", price="1000"),
            "DEC-3": item("DEC-3", "Typed Zeroprice", price="0"),
            "DEC-5": item("DEC-5", "Typed Cents", price="12.5"),
            "DEC-9": item("DEC-9", "Typed Nearmax", price="999.999"),
            "DEC-11": item("DEC-11", "Typed Noprice"),
        },
        # A negative number starts like a formula: the report shows it as text.
        report_cells={4: ("DEC-4", "Typed Negprice", "'-0.5")},
    ),
    TypedCase(
        "bad_dates.csv",
        "a leap day, no such day, month 13, slashes, day first, unpadded, basic form, a time",
        "COMPLETE_WITH_REJECTS",
        (9, 2, 7),
        rejects=tuple((row, row + 1, NOT_DATE) for row in range(2, 9)),
        items={
            "DAT-1": item("DAT-1", "Typed Leapday", launched="2024-02-29"),
            "DAT-9": item("DAT-9", "Typed Padded", launched="2031-03-01"),
        },
    ),
    TypedCase(
        "enum_values.csv",
        "enum values in other cases and padded, an unknown value, a prefix of one, two at once",
        "COMPLETE_WITH_REJECTS",
        (7, 4, 3),
        rejects=((4, 5, NOT_STATUS), (5, 6, NOT_STATUS), (6, 7, NOT_STATUS)),
        items={
            "ENU-1": item("ENU-1", "Typed Lowerlive", status="live"),
            "ENU-2": item("ENU-2", "Typed Upperlive", status="live"),
            "ENU-3": item("ENU-3", "Typed Paddedretired", status="retired"),
            "ENU-7": item("ENU-7", "Typed Capitaldraft", status="draft"),
        },
    ),
    TypedCase(
        "boolean_spellings.csv",
        "the twelve spellings of a boolean in odd cases, and six spellings that are none",
        "COMPLETE_WITH_REJECTS",
        (18, 12, 6),
        rejects=tuple((row, row + 1, NOT_BOOLEAN) for row in range(13, 19)),
        items={
            f"BOO-{n}": item(f"BOO-{n}", title, active=n <= 6)
            for n, title in enumerate(
                (
                    "Typed Truth",
                    "Typed Tee",
                    "Typed Yesyes",
                    "Typed Why",
                    "Typed Onedigit",
                    "Typed Onon",
                    "Typed Falsity",
                    "Typed Eff",
                    "Typed Nono",
                    "Typed Enn",
                    "Typed Zerodigit",
                    "Typed Offoff",
                ),
                start=1,
            )
        },
    ),
    TypedCase(
        "empty_key.csv",
        "an empty, a blank and a quoted empty key cell, a key over maxLength, a padded key, a key in another case",
        "COMPLETE_WITH_REJECTS",
        (7, 3, 4),
        # The key is checked first: the quoted empty key's row has a bad price too.
        rejects=((2, 3, EMPTY_KEY), (3, 4, EMPTY_KEY), (4, 5, EMPTY_KEY), (5, 6, LONG_KEY)),
        items={
            "KEY-1": item("KEY-1", "Typed Keyed", price="1"),
            "KEY-2": item("KEY-2", "Typed Paddedkey", price="2"),
            "key-1": item("key-1", "Typed Lowerkey", price="3"),
        },
        report_cells={4: ("", "Typed Quotedempty", "'-5")},
    ),
    TypedCase(
        "integers.csv",
        "whole numbers with leading zeros, signs, a fraction, below the minimum, a space, 38 and 39 digits",
        "COMPLETE_WITH_REJECTS",
        (9, 5, 4),
        rejects=((5, 6, NOT_WHOLE), (6, 7, STOCK_BELOW), (7, 8, NOT_WHOLE), (9, 10, STOCK_DIGITS)),
        items={
            "INT-1": item("INT-1", "Typed Plainint", stock="12"),
            "INT-2": item("INT-2", "Typed Leading", stock="7"),
            "INT-3": item("INT-3", "Typed Plussign", stock="3"),
            "INT-4": item("INT-4", "Typed Negzero", stock="0"),
            "INT-8": item("INT-8", "Typed Maxdigits", stock="9" * 38),
        },
    ),
    TypedCase(
        "datetimes.csv",
        "date-times with offsets and fractions, without an offset, in microseconds, a date alone, hour 25",
        "COMPLETE_WITH_REJECTS",
        (7, 3, 4),
        rejects=((4, 5, NOT_DATETIME), (5, 6, TOO_PRECISE), (6, 7, NOT_DATETIME), (7, 8, NOT_DATETIME)),
        items={
            "DTM-1": item("DTM-1", "Typed Offset", updated="2031-12-01T08:30:00.000Z"),
            "DTM-2": item("DTM-2", "Typed Minutes", updated="2031-12-01T09:30:00.000Z"),
            "DTM-3": item("DTM-3", "Typed Halfsecond", updated="2031-12-02T01:30:00.500Z"),
        },
    ),
    TypedCase(
        "all_types.csv",
        "every column, the key by its alias, a blank line, an ignored column, CRLF",
        "COMPLETE",
        (3, 3, 0),
        blank_lines=1,
        extra_columns=("notes",),
        items={
            "ALL-1": item(
                "ALL-1",
                "Typed Everything",
                price="24.9",
                stock="12",
                active=True,
                launched="2031-01-15",
                status="live",
                updated="2031-12-01T08:30:00.000Z",
            ),
            "ALL-2": item("ALL-2", "Typed Sparse"),
            "ALL-3": item(
                "ALL-3",
                "Typed Falsy",
                price="0",
                stock="0",
                active=False,
                launched="2031-01-16",
                status="draft",
                updated="2031-12-01T00:00:00.000Z",
            ),
        },
    ),
    TypedCase(
        "rule_order.csv",
        "rows breaking several rules: the key's first, then the columns as declared",
        "COMPLETE_WITH_REJECTS",
        (9, 1, 8),
        rejects=(
            (1, 2, EMPTY_TITLE),
            (2, 3, PRICE_BELOW),
            (3, 4, NOT_WHOLE),
            (4, 5, NOT_BOOLEAN),
            (5, 6, NOT_DATE),
            (6, 7, NOT_STATUS),
            (7, 8, NOT_DATETIME),
            (8, 9, EMPTY_KEY),
        ),
        items={
            "ORD-8": item(
                "ORD-8",
                "Typed Order",
                price="1",
                stock="1",
                active=True,
                launched="2031-01-01",
                status="live",
                updated="2031-01-01T00:00:00.000Z",
            )
        },
        report_cells={2: ("ORD-2", "Typed Order", "'-1", "x", "maybe", "bad", "bad", "bad")},
    ),
    TypedCase(
        "duplicate_keys.csv",
        "a SKU three times and another twice (padded, its later row rejected)",
        "COMPLETE_WITH_REJECTS",
        (5, 4, 1),
        rejects=((4, 5, PRICE_BELOW),),
        items={
            "DUP-1": item("DUP-1", "Typed Fifth", price="5.5", active=False),
            "DUP-2": item("DUP-2", "Typed Second", price="2.2", active=False),
        },
    ),
    TypedCase(
        "missing_title_column.csv",
        "no column for the required title",
        "FAILED",
        error="incomplete header: missing title column(s)",
    ),
    TypedCase(
        "duplicate_key_header.csv",
        "the key column named twice, once by its alias",
        "FAILED",
        error="header names the sku column more than once",
    ),
)


def key_cells(body: bytes) -> set[str]:
    """The key column's cells of a file of the corpus (each file puts it first), as sent and trimmed:
    what a client could ask the API for."""
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    return {form for row in rows[1:] if row for form in (row[0], row[0].strip()) if form}
