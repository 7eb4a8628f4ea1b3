"""Properties of the schema's column types (`handlers/common/schema.py`), each against its rule
restated here without the module's code: what a valid cell normalises to is computed another way
(string surgery, `datetime` arithmetic, a lookup), and must be what the type gives.

For every type, both ways: a generated valid cell (in the spellings people type: spaces around, any
case, signs, leading and trailing zeros, offsets) comes back in the normal form, normalising that
again changes nothing and `Column.is_normal` accepts it; a generated invalid cell is refused with one
of the type's fixed reasons, which name the column and the rule, never the cell.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from handlers.common.schema import FALSE_SPELLINGS, TRUE_SPELLINGS, Column, InvalidValue, Value, parse_schema
from tests.evidence import Proof

SECTION = "Properties"

SCHEMA = parse_schema(
    {
        "name": "things",
        "key": "id",
        "columns": [
            {"name": "id", "type": "text", "maxLength": 40},
            {"name": "note", "type": "text", "maxLength": 40},
            {"name": "count", "type": "integer", "min": -1000000, "max": 1000000},
            {"name": "big", "type": "integer"},
            {"name": "price", "type": "decimal", "min": "-99999.99", "max": "99999.99"},
            {"name": "ratio", "type": "decimal"},
            {"name": "active", "type": "boolean"},
            {"name": "since", "type": "date"},
            {"name": "at", "type": "datetime"},
            {"name": "status", "type": "enum", "values": ["Active", "Retired", "on-hold"]},
            {"name": "contact", "type": "email"},
            {"name": "mobile", "type": "phone"},
        ],
    }
)
COLUMNS = {column.name: column for column in SCHEMA.columns}


def _proof(kind: str, injected: str, held: str, examples: int, test: str) -> Proof:
    return Proof("RELIABILITY", SECTION, f"Column type: {kind}", injected, held, {"examples": examples}, test)


PROOFS = [
    TEXT := _proof(
        "text",
        "arbitrary Unicode text of 0–60 characters with any whitespace around, in a column of maxLength 40",
        "accepted exactly when 1–40 characters remain once trimmed, as the trimmed text; idempotent; fixed reasons",
        200,
        "test_text_follows_its_rule",
    ),
    INTEGER := _proof(
        "integer",
        "a sign or none, leading zeros, 1–45 digits, spaces around; one time in three a stray character (a"
        " point, a comma, another script's digit, a letter, an exponent)",
        "accepted exactly when it is a whole number of at most 38 digits within min/max, as that number;"
        " idempotent; fixed reasons",
        300,
        "test_integer_follows_its_rule",
    ),
    DECIMAL := _proof(
        "decimal",
        "a sign or none, 0–42 integer digits, a point or none, 0–42 fraction digits, zeros at both ends, spaces"
        " around; one time in three a stray character (a second point, a comma, an exponent, a letter)",
        "accepted exactly when it is a decimal of at most 38 significant digits within min/max, as its exact"
        " form without exponent or needless zeros; idempotent; fixed reasons",
        400,
        "test_decimal_follows_its_rule",
    ),
    BOOLEAN := _proof(
        "boolean",
        "each documented spelling in random case with spaces around, and arbitrary short text",
        "accepted exactly when a documented spelling, as true or false; idempotent; fixed reasons",
        200,
        "test_boolean_follows_its_rule",
    ),
    DATE := _proof(
        "date",
        "any calendar date written YYYY-MM-DD, and day, month and year digits of any value and width",
        "accepted exactly when a real calendar date in that form, unchanged; idempotent; fixed reasons",
        300,
        "test_date_follows_its_rule",
    ),
    DATETIME := _proof(
        "datetime",
        "any instant of years 1–9999 to the millisecond, at a UTC offset of −14:00 to +14:00 in minutes, written"
        " with Z or ±HH:MM or ±HHMM, `T` or a space, with or without seconds; sub-millisecond fractions and"
        " times without offset",
        "accepted exactly when the instant has an offset, is within years 1–9999 in UTC and is no more precise"
        " than a millisecond, as that instant in UTC with Z to the millisecond; idempotent; fixed reasons",
        400,
        "test_datetime_follows_its_rule",
    ),
    MANY := _proof(
        "many cells at once",
        "blocks of 1–8 cells of one generator above or of any, valid, blank and invalid mixed, for every column",
        "the block path gives each cell's normal form exactly when every cell is valid, and nothing otherwise",
        400,
        "test_many_cells_at_once_is_cell_by_cell",
    ),
    ENUM := _proof(
        "enum",
        "each declared value in random case with spaces around, and arbitrary short text",
        "accepted exactly when a declared value ignoring case, as declared; idempotent; fixed reasons",
        200,
        "test_enum_follows_its_rule",
    ),
]

# Every reason a column type may give, by column: fixed words, the column's name, at most a length.
REASONS = {
    "id": r"id is empty|id is \d+ characters long; at most 40 allowed",
    "note": r"note is \d+ characters long; at most 40 allowed",
    "count": r"count is not a whole number \(digits, an optional sign\)|count has more than 38 digits"
    r"|count is below its minimum, -1000000|count is above its maximum, 1000000",
    "big": r"big is not a whole number \(digits, an optional sign\)|big has more than 38 digits",
    "price": r"price is not a decimal number \(digits, an optional sign and one '\.'\)"
    r"|price has more than 38 significant digits|price is below its minimum, -99999\.99"
    r"|price is above its maximum, 99999\.99|price is outside DynamoDB's range of numbers \(1E-130 to 1E\+126\)",
    "ratio": r"ratio is not a decimal number \(digits, an optional sign and one '\.'\)"
    r"|ratio has more than 38 significant digits|ratio is outside DynamoDB's range of numbers \(1E-130 to 1E\+126\)",
    "active": r"active is not a boolean \(true/t/yes/y/1/on or false/f/no/n/0/off\)",
    "since": r"since is not a date in ISO 8601 form \(YYYY-MM-DD\)",
    "at": r"at is not a date and time in ISO 8601 form with a UTC offset \(YYYY-MM-DDTHH:MM\[:SS\[\.fff\]\] then Z"
    r" or ±HH:MM\)|at is more precise than a millisecond",
    "status": r"status is not one of its 3 values \(Active, Retired, on-hold\)",
}


def outcome(column: Column, raw: str) -> Value | InvalidValue:
    """What the column makes of `raw`: its value, or the refusal, whose reason must be a fixed one.
    A blank cell of an optional column is None (absent), and only a blank one."""
    try:
        value = column.normalize(raw)
    except InvalidValue as invalid:
        assert re.fullmatch(REASONS[column.name], str(invalid)), f"reason outside the fixed ones: {str(invalid)!r}"
        return invalid
    assert (value is None) == (not raw.strip() and not column.required), (raw, value)
    if value is None:
        return None
    assert column.normalize(render_back(value)) == value, "normalising the normal form changes it"
    assert column.is_normal(value)
    return value


def render_back(value: Value) -> str:
    return {True: "true", False: "false"}.get(value, str(value)) if isinstance(value, bool) else str(value)


spaces = st.text(st.sampled_from(" \t\xa0\u2003"), max_size=2)
noise = st.characters(codec="utf-8")


@st.composite
def mutated(draw: st.DrawFn, text: str, odd: st.SearchStrategy[str]) -> str:
    """`text`, and one time in three an `odd` character inserted somewhere in it."""
    if draw(st.integers(0, 2)) == 0:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(odd) + text[at:]
    return text


def _spaced(draw: st.DrawFn, text: str) -> str:
    return draw(spaces) + text + draw(spaces)


def _check(prop: Callable[..., None], proof: Proof, examples: Callable[..., int]) -> None:
    assert examples(prop, proof) == proof.figures["examples"]


# --- text ------------------------------------------------------------------------------------


@given(raw=st.builds(lambda a, text, b: a + text + b, spaces, st.text(noise, max_size=60), spaces))
def _text(raw: str) -> None:
    result = outcome(COLUMNS["id"], raw)
    expected = raw.strip()
    if isinstance(result, InvalidValue):
        assert not 0 < len(expected) <= 40
    else:
        assert result == expected and 0 < len(expected) <= 40


def test_text_follows_its_rule(examples):
    _check(_text, TEXT, examples)


def _digits(count: int) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from(string.digits), min_size=count, max_size=count)


# --- integer ---------------------------------------------------------------------------------

odd_in_number = st.sampled_from([".", ",", "e", "E5", "x", "٣", "０", "+", "-", "_", " "])


@st.composite
def integer_like(draw: st.DrawFn) -> str:
    digits = draw(st.integers(1, 9).flatmap(lambda n: st.sampled_from([n, 37, 38, 39, 45])).flatmap(_digits))
    sign = draw(st.sampled_from(["", "+", "-"]))
    zeros = "0" * draw(st.integers(0, 3))
    return _spaced(draw, draw(mutated(sign + zeros + digits, odd_in_number)))


@given(raw=st.one_of(integer_like(), st.text(noise, max_size=6)))
def _integer(raw: str) -> None:
    for name, bound in (("count", 1000000), ("big", None)):
        result = outcome(COLUMNS[name], raw)
        if result is None:
            continue  # blank: absent (`outcome` checked it)
        text = raw.strip()
        whole = re.fullmatch(r"[+-]?[0-9]+", text) is not None
        number = int(text) if whole else None
        valid = number is not None and len(str(abs(number))) <= 38
        if valid and bound is not None:
            valid = -bound <= number <= bound  # type: ignore[operator]
        if isinstance(result, InvalidValue):
            assert not valid, (raw, name)
        else:
            assert valid and result == number and type(result) is int, (raw, name)


def test_integer_follows_its_rule(examples):
    _check(_integer, INTEGER, examples)


# --- decimal ---------------------------------------------------------------------------------


@st.composite
def decimal_like(draw: st.DrawFn) -> str:
    # Runs of zeros put the number near DynamoDB's smallest and largest magnitudes (1E-130, 1E+126).
    whole = draw(st.text(st.sampled_from(string.digits), max_size=42)) + "0" * draw(st.sampled_from([0, 0, 90, 130]))
    fraction = "0" * draw(st.sampled_from([0, 0, 125, 135])) + draw(
        st.text(st.sampled_from(string.digits), max_size=42)
    )
    point = draw(st.sampled_from([".", ""]))
    text = draw(st.sampled_from(["", "+", "-"])) + whole + point + (fraction if point else "")
    return _spaced(draw, draw(mutated(text, odd_in_number)))


def expected_decimal(text: str) -> tuple[str, int, int] | None:
    """The normal form of a decimal cell by string surgery (no `Decimal`): sign, digits without
    needless zeros and a point where needed; with its significant digits and its adjusted exponent.
    None when it is not a decimal."""
    matched = re.fullmatch(r"([+-]?)([0-9]*)(?:\.([0-9]*))?", text)
    if matched is None or not (matched[2] or matched[3]):
        return None
    sign, whole, fraction = matched[1], matched[2].lstrip("0"), (matched[3] or "").rstrip("0")
    if not whole and not fraction:
        return "0", 0, 0
    digits = (whole + fraction).lstrip("0").rstrip("0")
    exponent = len(whole) - 1 if whole else -(len(fraction) - len(fraction.lstrip("0")) + 1)
    form = (whole or "0") + (f".{fraction}" if fraction else "")
    return ("-" if sign == "-" else "") + form, len(digits), exponent


@given(raw=st.one_of(decimal_like(), st.text(noise, max_size=6)))
def _decimal(raw: str) -> None:
    for name, bound in (("price", "99999.99"), ("ratio", None)):
        result = outcome(COLUMNS[name], raw)
        if result is None:
            continue  # blank: absent (`outcome` checked it)
        expected = expected_decimal(raw.strip())
        valid = expected is not None and expected[1] <= 38 and -130 <= expected[2] <= 125
        if valid and bound is not None:
            valid = abs(Decimal(expected[0])) <= Decimal(bound)  # only to compare: the form is computed above
        if isinstance(result, InvalidValue):
            assert not valid, (raw, name)
        else:
            assert valid and expected is not None and result == expected[0], (raw, name, result)


def test_decimal_follows_its_rule(examples):
    _check(_decimal, DECIMAL, examples)


# --- boolean ---------------------------------------------------------------------------------


@st.composite
def spaced_random_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return _spaced(draw, "".join(c.upper() if flip else c for c, flip in zip(text, flips, strict=True)))


@given(
    raw=st.one_of(st.sampled_from([*TRUE_SPELLINGS, *FALSE_SPELLINGS]).flatmap(spaced_random_case), st.text(max_size=5))
)
def _boolean(raw: str) -> None:
    result = outcome(COLUMNS["active"], raw)
    if result is None:
        return  # blank: absent (`outcome` checked it)
    spelling = raw.strip().lower()
    if isinstance(result, InvalidValue):
        assert spelling not in (*TRUE_SPELLINGS, *FALSE_SPELLINGS)
    else:
        assert result is (spelling in TRUE_SPELLINGS) and spelling in (*TRUE_SPELLINGS, *FALSE_SPELLINGS)


def test_boolean_follows_its_rule(examples):
    _check(_boolean, BOOLEAN, examples)


# --- date ------------------------------------------------------------------------------------


@st.composite
def date_like(draw: st.DrawFn) -> tuple[str, date | None]:
    """A cell and the date it writes, if any."""
    if draw(st.booleans()):
        day = draw(st.dates())
        return _spaced(draw, f"{day.year:04d}-{day.month:02d}-{day.day:02d}"), day
    parts = [draw(st.integers(0, 10 ** draw(st.integers(1, 4)) - 1)) for _ in range(3)]
    widths = [draw(st.integers(1, 4)) for _ in range(3)]
    text = "-".join(f"{part:0{width}d}" for part, width in zip(parts, widths, strict=True))
    written = [len(f"{part:0{width}d}") for part, width in zip(parts, widths, strict=True)]
    try:
        real = date(*parts) if written == [4, 2, 2] else None
    except ValueError:
        real = None
    return text, real


@given(case=date_like())
def _date(case: tuple[str, date | None]) -> None:
    raw, real = case
    result = outcome(COLUMNS["since"], raw)
    if isinstance(result, InvalidValue):
        assert real is None
    else:
        assert real is not None and result == f"{real.year:04d}-{real.month:02d}-{real.day:02d}"


def test_date_follows_its_rule(examples):
    _check(_date, DATE, examples)


# --- datetime --------------------------------------------------------------------------------


@st.composite
def datetime_like(draw: st.DrawFn) -> tuple[str, str | None]:
    """A cell and the normal form an independent computation gives it (None: refused)."""
    moment = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    offset = draw(st.integers(-14 * 60, 14 * 60))
    zone = timezone(timedelta(minutes=offset))
    sign, minutes = ("-" if offset < 0 else "+"), abs(offset)
    written_zone = draw(
        st.sampled_from(
            [
                "Z" if offset == 0 else f"{sign}{minutes // 60:02d}:{minutes % 60:02d}",
                f"{sign}{minutes // 60:02d}{minutes % 60:02d}",
                "",
            ]
        )
    )
    seconds = draw(st.booleans()) or moment.second or moment.microsecond
    fraction = f".{moment.microsecond // 1000:03d}" if moment.microsecond else ""
    extra = draw(st.sampled_from(["", "", "0", "5"]))  # a fourth fraction digit: refused unless 0
    if extra and not fraction and seconds:
        fraction = ".000"
    clock = f"{moment.hour:02d}:{moment.minute:02d}" + (f":{moment.second:02d}{fraction}{extra}" if seconds else "")
    text = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}{draw(st.sampled_from(['T', ' ']))}{clock}"
    if not written_zone or (extra and extra != "0" and seconds):
        return _spaced(draw, text + written_zone), None
    try:
        utc = moment.replace(tzinfo=zone).astimezone(UTC)
    except OverflowError:
        return text + written_zone, None
    normal = f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    return _spaced(draw, text + written_zone), f"{normal}.{utc.microsecond // 1000:03d}Z"


@given(case=datetime_like())
def _datetime(case: tuple[str, str | None]) -> None:
    raw, expected = case
    result = outcome(COLUMNS["at"], raw)
    if isinstance(result, InvalidValue):
        assert expected is None, (raw, str(result))
    else:
        assert result == expected, (raw, result)


def test_datetime_follows_its_rule(examples):
    _check(_datetime, DATETIME, examples)


# --- enum ------------------------------------------------------------------------------------

DECLARED = ("Active", "Retired", "on-hold")


@given(raw=st.one_of(st.sampled_from(DECLARED).flatmap(spaced_random_case), st.text(max_size=8)))
def _enum(raw: str) -> None:
    result = outcome(COLUMNS["status"], raw)
    if result is None:
        return  # blank: absent (`outcome` checked it)
    matches: dict[str, Any] = {value.casefold(): value for value in DECLARED}
    if isinstance(result, InvalidValue):
        assert raw.strip().casefold() not in matches
    else:
        assert result == matches[raw.strip().casefold()]


def test_enum_follows_its_rule(examples):
    _check(_enum, ENUM, examples)


# --- many cells at once ----------------------------------------------------------------------

generators = (
    st.builds(lambda a, text, b: a + text + b, spaces, st.text(noise, max_size=45), spaces),
    integer_like(),
    st.integers(-2000000, 2000000).map(str),  # whole numbers near the bounds, so a block holds one beyond
    decimal_like(),
    st.sampled_from([*TRUE_SPELLINGS, *FALSE_SPELLINGS, *DECLARED, "maybe"]).flatmap(spaced_random_case),
    date_like().map(lambda case: case[0]),
    datetime_like().map(lambda case: case[0]),
    st.sampled_from(["", " ", "a@b.co", " A@Example.COM ", "+49 (151) 123-456", "12345", "x@y"]),
    st.sampled_from(["", "  ", "abc", " Abc ", "x" * 41]),  # text with blanks, one too long
    st.sampled_from(["2024-02-29", "2023-02-29", "2026-02-30", "2026-13-01", "2026-12-06", "0000-01-01"]),
)
any_cell = st.one_of(generators)


# Blocks of one generator's cells (a column of a file is alike) and of any.
@given(
    cells=st.one_of(
        st.sampled_from(generators).flatmap(lambda cell: st.lists(cell, min_size=1, max_size=8)),
        st.lists(any_cell, min_size=1, max_size=8),
    )
)
def _many(cells: list[str]) -> None:
    for column in SCHEMA.columns:
        each: list[Value] | None = []
        for cell in cells:
            try:
                each.append(column.normalize(cell))  # type: ignore[union-attr]
            except InvalidValue:
                each = None
                break
        assert column.normalize_many(cells) == each, (column.name, cells)


def test_many_cells_at_once_is_cell_by_cell(examples):
    _check(_many, MANY, examples)
