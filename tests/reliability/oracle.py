"""The table and the jobs the pipeline must end with, computed from the uploaded files alone.

An oracle that shared the code under test would agree with it whatever it did, so this module
imports nothing from `handlers`: it reads the files with the stdlib `csv` module and applies the
README's rules as written there. "CSV rules": blank records skipped and counted; a row rejected for
a wrong field count; the later row of a file wins, and the later upload wins. "Schema": a header
cell names a column when it is one of the column's spellings (its name and aliases) compared
ignoring case, spaces, `-` and `_`; the key column and every `required` one must be named, and no
column twice; each cell is trimmed, and an empty one is absent from the item, or rejects its row
when its column is required; every other cell is held to its type's rule and stored in its normal
form (the README's table of types, restated in `_TYPES`).

A schema is read from its declaration, as `csv-ingest:schema` states it (`Rules.of`): `USERS` is the
default schema restated from the README (name, mail or email, phone), `PRODUCTS` a catalogue keyed
by a SKU, whose types are numbers, booleans and dates. The oracle covers what `generate` and
`generate_products` write — valid rows in several spellings, rows breaking one rule each, ragged
rows, blank lines, repeated and shared keys — and the file-level failures a test is likely to hand
it (not UTF-8, no header, a missing or repeated column).

`verify` then compares a running local stack with an `Expectation`, scoped to one part of the keys
(an e-mail domain, a SKU prefix) so that scenarios sharing a stack do not see each other's rows, and
returns figures, never values: its findings name uploads, rows and fields, not the cells they hold.
"""

from __future__ import annotations

import csv
import io
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from tests.local.support import LocalStackProcess, wait_for

COMPLETE = "COMPLETE"
COMPLETE_WITH_REJECTS = "COMPLETE_WITH_REJECTS"
FAILED = "FAILED"
ENDED = (COMPLETE, COMPLETE_WITH_REJECTS, FAILED)

# --- the README's rules, restated here on purpose (see the module docstring) ---------------------

Value = str | int | bool | None
"""A cell in its type's normal form: text, a whole number, a boolean, or None (empty)."""

_DEFAULT_TEXT_LENGTH = 256
_EMAIL_LIMIT = 254
_DOMAIN_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_VALID_EMAIL = re.compile(rf"[a-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})+")
_PHONE_SEPARATORS = re.compile(r"[\s().-]")
_VALID_PHONE = re.compile(r"\+?[0-9]{6,15}")
_NUMBER_DIGITS = 38
# DynamoDB's numbers: magnitudes from 1E-130 to 9.9999…E+125, "up to 38 digits of precision"
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html#HowItWorks.DataTypes.Number).
_LEAST_EXPONENT, _GREATEST_EXPONENT = -130, 125
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"(?P<sign>[+-]?)(?P<whole>[0-9]*)(?:\.(?P<fraction>[0-9]*))?")
TRUE_SPELLINGS = ("true", "t", "yes", "y", "1", "on")
FALSE_SPELLINGS = ("false", "f", "no", "n", "0", "off")
_DATE = re.compile(r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})")
# The README's form: `YYYY-MM-DDTHH:MM[:SS[.fff]]` then `Z` or `±HH:MM`.
_DATETIME = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]{1,3}))?)?"
    r"(?:(?P<utc>Z)|(?P<sign>[+-])(?P<offset_hours>[0-9]{2}):(?P<offset_minutes>[0-9]{2}))"
)
_SPELLING_NOISE = re.compile(r"[\s_-]+")


class _Broken(Exception):
    """A cell that breaks its column's rule (the oracle counts rejects; it does not word reasons)."""


@dataclass(frozen=True)
class Column:
    """A declared column, as the oracle reads it."""

    name: str
    type: str
    attribute: str
    spellings: tuple[str, ...]
    required: bool
    max_length: int = _DEFAULT_TEXT_LENGTH
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    values: tuple[str, ...] = ()

    def normalize(self, cell: str) -> Value:
        """The trimmed, non-empty `cell` in its type's normal form; `_Broken` when it breaks the rule."""
        return _TYPES[self.type](self, cell)

    def stored(self, value: Value) -> dict[str, Any] | None:
        """How DynamoDB holds `value` (its wire form: N for numbers, BOOL for booleans, S for the
        rest); None when the attribute is absent."""
        if value is None:
            return None
        if self.type in ("integer", "decimal"):
            return {"N": str(value)}
        if self.type == "boolean":
            return {"BOOL": value}
        return {"S": value}

    def within(self, number: Decimal) -> None:
        """`_Broken` unless `number` is within the column's `min` and `max` (each included)."""
        if (self.minimum is not None and number < self.minimum) or (self.maximum is not None and number > self.maximum):
            raise _Broken


def _bound(declared: Mapping[str, Any], option: str) -> Decimal | None:
    """A declared `min` or `max` (a number or its text), exactly."""
    return Decimal(str(declared[option])) if option in declared else None


def _match_key(spelling: str) -> str:
    """A header cell or spelling as they are compared: case, spaces, `-` and `_` ignored."""
    return _SPELLING_NOISE.sub("", spelling).casefold()


@dataclass(frozen=True)
class Rules:
    """A schema as its declaration states it: the collection, its key column and its columns."""

    name: str
    key: str
    columns: tuple[Column, ...]

    @classmethod
    def of(cls, declaration: Mapping[str, Any]) -> Rules:
        """The rules a `csv-ingest:schema` declaration states (assumed valid: the program checks it)."""
        key = declaration["key"]
        columns = tuple(
            Column(
                name=declared["name"],
                type=declared["type"],
                attribute=declared.get("attribute", declared["name"]),
                spellings=(declared["name"], *declared.get("aliases", ())),
                required=declared.get("required", False) or declared["name"] == key,
                max_length=declared.get("maxLength", _DEFAULT_TEXT_LENGTH),
                minimum=_bound(declared, "min"),
                maximum=_bound(declared, "max"),
                values=tuple(declared.get("values", ())),
            )
            for declared in declaration["columns"]
        )
        return cls(declaration["name"], key, columns)

    @property
    def key_column(self) -> Column:
        return next(column for column in self.columns if column.name == self.key)

    @property
    def table_output(self) -> str:
        """The stack output naming the items table (README "Schema": `productsTableName`)."""
        return f"{self.name}TableName"

    def in_scope(self, key: str, scope: str) -> bool:
        """Whether an item's key belongs to a scenario's `scope`: an e-mail key's domain; any other key
        that begins `<scope>-` (`generate_products` writes `<scope>-p<row>`)."""
        if self.key_column.type == "email":
            return key.endswith("@" + scope)
        return key.startswith(scope + "-")

    def header(self, cells: list[str]) -> dict[str, int] | None:
        """Where each named column is (by column name), or None when the header is not usable: a
        required column missing, or a column named twice."""
        found: dict[str, list[int]] = {}
        for position, cell in enumerate(cells):
            for column in self.columns:
                if _match_key(cell) in {_match_key(spelling) for spelling in column.spellings}:
                    found.setdefault(column.name, []).append(position)
        if any(len(positions) > 1 for positions in found.values()):
            return None
        if any(column.required and column.name not in found for column in self.columns):
            return None
        return {name: positions[0] for name, positions in found.items()}

    def values(self, cells: list[str], width: int, positions: Mapping[str, int]) -> dict[str, Value] | None:
        """A row's values by attribute (None: absent), or None when the row breaks a rule."""
        if len(cells) != width:
            return None
        values: dict[str, Value] = {}
        for column in self.columns:
            cell = cells[positions[column.name]].strip() if column.name in positions else ""
            if not cell:
                if column.required:
                    return None
                values[column.attribute] = None
                continue
            try:
                values[column.attribute] = column.normalize(cell)
            except _Broken:
                return None
        return values

    def key_of(self, values: Mapping[str, Value]) -> str:
        """An item's key as text: how `verify` finds it in the table (a number's digits)."""
        return str(values[self.key_column.attribute])


def _text(column: Column, cell: str) -> str:
    if len(cell) > column.max_length:
        raise _Broken
    return cell


def _email(column: Column, cell: str) -> str:
    email = cell.lower()
    if len(email) > _EMAIL_LIMIT or not _VALID_EMAIL.fullmatch(email):
        raise _Broken
    return email


def _phone(column: Column, cell: str) -> str:
    phone = _PHONE_SEPARATORS.sub("", cell)
    if not _VALID_PHONE.fullmatch(phone):
        raise _Broken
    return phone


def _integer(column: Column, cell: str) -> int:
    if not _INTEGER.fullmatch(cell):
        raise _Broken
    number = int(cell)
    if len(str(abs(number))) > _NUMBER_DIGITS:
        raise _Broken
    column.within(Decimal(number))
    return number


def _decimal(column: Column, cell: str) -> str:
    """Exact, written out by hand: no `+`, no leading zeros but the one before a point, no trailing
    zeros after it, no point without a fraction, no sign on zero (`007.50` is `7.5`, `-0.0` is `0`)."""
    matched = _DECIMAL.fullmatch(cell)
    if matched is None or not (matched["whole"] or matched["fraction"]):
        raise _Broken
    whole, fraction = matched["whole"].lstrip("0"), (matched["fraction"] or "").rstrip("0")
    significant = (whole + fraction).strip("0")
    if not significant:
        column.within(Decimal(0))
        return "0"
    exponent = len(whole) - 1 if whole else -(len(fraction) - len(fraction.lstrip("0")) + 1)
    if len(significant) > _NUMBER_DIGITS or not _LEAST_EXPONENT <= exponent <= _GREATEST_EXPONENT:
        raise _Broken
    text = ("-" if matched["sign"] == "-" else "") + (whole or "0") + (f".{fraction}" if fraction else "")
    column.within(Decimal(text))
    return text


def _boolean(column: Column, cell: str) -> bool:
    spelling = cell.lower()
    if spelling in TRUE_SPELLINGS:
        return True
    if spelling in FALSE_SPELLINGS:
        return False
    raise _Broken


def _date(column: Column, cell: str) -> str:
    matched = _DATE.fullmatch(cell)
    try:
        if matched is None:
            raise ValueError(cell)
        return date(int(matched["year"]), int(matched["month"]), int(matched["day"])).isoformat()
    except ValueError:
        raise _Broken from None


def _datetime(column: Column, cell: str) -> str:
    """In UTC, to the millisecond, with `Z`: `2026-12-06T15:43:50.000Z`."""
    matched = _DATETIME.fullmatch(cell)
    try:
        if matched is None:
            raise ValueError(cell)
        offset = timedelta(0)
        if not matched["utc"]:
            hours, minutes = int(matched["offset_hours"]), int(matched["offset_minutes"])
            if minutes >= 60:
                raise ValueError(cell)
            offset = (-1 if matched["sign"] == "-" else 1) * timedelta(hours=hours, minutes=minutes)
        milliseconds = int((matched["fraction"] or "0").ljust(3, "0"))
        moment = datetime(
            *(int(matched[part]) for part in ("year", "month", "day", "hour", "minute")),
            int(matched["second"] or 0),
            milliseconds * 1000,
            tzinfo=timezone(offset),
        ).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: before year 1 or after 9999, in UTC
        raise _Broken from None
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{milliseconds:03d}Z"


def _enum(column: Column, cell: str) -> str:
    for value in column.values:
        if value.casefold() == cell.casefold():
            return value
    raise _Broken


_TYPES: Mapping[str, Callable[[Column, str], Value]] = {
    "text": _text,
    "email": _email,
    "phone": _phone,
    "integer": _integer,
    "decimal": _decimal,
    "boolean": _boolean,
    "date": _date,
    "datetime": _datetime,
    "enum": _enum,
}

# The default schema, as the README describes the users pipeline: `name` (required, at most 256
# characters), `mail` (the key, an e-mail, stored as `email`, `email` accepted in the header), `phone`.
USERS = Rules.of(
    {
        "name": "users",
        "key": "mail",
        "columns": [
            {"name": "name", "type": "text", "required": True},
            {"name": "mail", "type": "email", "attribute": "email", "aliases": ["email"]},
            {"name": "phone", "type": "phone"},
        ],
    }
)
# A catalogue whose key is no e-mail: what `generate_products` writes, and the reliability suite runs
# on a second schema (`python -m ingest local up --set schema=<its JSON>`).
PRODUCTS_DECLARATION: Mapping[str, Any] = {
    "name": "products",
    "key": "sku",
    "columns": [
        {"name": "sku", "type": "text", "maxLength": 64, "aliases": ["article number"]},
        {"name": "title", "type": "text", "required": True},
        {"name": "price", "type": "decimal", "min": "0"},
        {"name": "stock", "type": "integer", "min": 0},
        {"name": "active", "type": "boolean"},
        {"name": "launched", "type": "date", "aliases": ["launch date"]},
    ],
}
PRODUCTS = Rules.of(PRODUCTS_DECLARATION)


@dataclass(frozen=True)
class Upload:
    """One object put under the uploads prefix: its key and its bytes."""

    key: str
    body: bytes


@dataclass(frozen=True)
class ExpectedItem:
    """What the items table must hold for one key: the winning row's values and where it came from."""

    values: Mapping[str, Value]
    """By attribute, every column's (None: the attribute is absent)."""
    key: str
    """The object key of the winning upload."""
    upload: int
    """Index of the winning upload in the sequence given to `expect` (a key may be uploaded twice)."""
    row: int
    """The winning row's number in its file (1 = first data row; blank lines are not rows)."""


@dataclass(frozen=True)
class ExpectedUser:
    """An `ExpectedItem` of the users schema, by its two values besides the email."""

    name: str
    phone: str | None
    key: str
    upload: int
    row: int


@dataclass(frozen=True)
class ExpectedJob:
    """A job's final outcome; for a FAILED job the counts are 0 and only the status is compared."""

    key: str
    status: str
    rows_total: int
    rows_valid: int
    rows_rejected: int
    blank_lines: int


@dataclass(frozen=True)
class Expectation:
    items: Mapping[str, ExpectedItem]
    """By key, as text (`Rules.key_of`)."""
    jobs: Sequence[ExpectedJob]
    """One per upload, in upload order."""
    rules: Rules = USERS

    @property
    def users(self) -> dict[str, ExpectedUser]:
        """The items of the users schema, by email."""
        return {
            email: ExpectedUser(item.values["name"], item.values["phone"], item.key, item.upload, item.row)  # type: ignore[arg-type]
            for email, item in self.items.items()
        }


@dataclass(frozen=True)
class _Reading:
    status: str
    items: dict[str, tuple[dict[str, Value], int]]
    """key -> (values, row): the file's last valid row for each key."""
    rows_total: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    blank_lines: int = 0

    @property
    def users(self) -> dict[str, tuple[dict[str, Value], int]]:
        """The items of a users file, by email."""
        return self.items


def _is_blank(cells: list[str]) -> bool:
    return all(not cell.strip() for cell in cells)


def read_file(body: bytes, rules: Rules = USERS) -> _Reading:
    """One file's outcome under the CSV rules and the schema's."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _Reading(FAILED, {})
    if "\0" in text:
        return _Reading(FAILED, {})
    records = iter(csv.reader(io.StringIO(text, newline="")))
    header = next((cells for cells in records if not _is_blank(cells)), None)
    if header is None:
        return _Reading(FAILED, {})
    positions = rules.header(header)
    if positions is None:
        return _Reading(FAILED, {})
    items: dict[str, tuple[dict[str, Value], int]] = {}
    total = valid = blank = 0
    for cells in records:
        if _is_blank(cells):
            blank += 1
            continue
        total += 1
        values = rules.values(cells, len(header), positions)
        if values is not None:
            valid += 1
            items[rules.key_of(values)] = (values, total)
    status = COMPLETE if valid == total else COMPLETE_WITH_REJECTS
    return _Reading(status, items, total, valid, total - valid, blank)


def expect(uploads: Sequence[Upload], rules: Rules = USERS) -> Expectation:
    """The final table and jobs for `uploads`, in the order S3 received them (each one triggers a job)."""
    items: dict[str, ExpectedItem] = {}
    jobs = []
    for index, upload in enumerate(uploads):
        reading = read_file(upload.body, rules)
        jobs.append(
            ExpectedJob(
                upload.key,
                reading.status,
                reading.rows_total,
                reading.rows_valid,
                reading.rows_rejected,
                reading.blank_lines,
            )
        )
        for key, (values, row) in reading.items.items():
            items[key] = ExpectedItem(values, upload.key, index, row)
    return Expectation(items, jobs, rules)


# --- inputs -------------------------------------------------------------------------------------------

_FIRST = ("Ana", "Bo", "Chidi", "Dana", "Émile", "Farah", "Gus", "Hana", "Ivo", "Jun", "Zoë", "Łukasz")
_LAST = ("Smith", "O'Neil", "Ngata", "Åberg", "Lee", "Doe, Jr.", 'the "Ace"', "Kowalski", "Ito", "Brown\nline two")
# (what is wrong, how the row is written): each breaks exactly one rule.
_INVALID = ("email without @", "email without a dotted domain", "email with a space", "empty name", "phone", "ragged")
HEADER = ("Name", " Email ", "phone", "note")


def generate(domain: str, rows: int, *, seed: int, invalid_every: int = 0, shared: Sequence[str] = ()) -> bytes:
    """A CSV file of `rows` data rows under `HEADER` (trimmed and mixed-case, `Email` for `mail`, an
    extra column), with emails `…@domain`.

    Deterministic in `seed`. Names carry the seed and row, so a stale winner is told apart. Every
    `invalid_every`-th row breaks one rule (cycling through `_INVALID`); about one row in 40 repeats
    an earlier email of the file (the later row must win); about one in 4 takes an email of
    `shared` (full addresses, for files that overlap — give them `domain` too); every 50th row is
    followed by a blank line or a line of empty cells. Emails come upper-cased or padded with
    spaces now and then, phones in several spellings or empty, names with commas, quotes and
    letters beyond ASCII, lines ending in CRLF or LF as the seed picks.
    """
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=rng.choice(("\r\n", "\n")))
    writer.writerow(HEADER)
    written: list[str] = []
    for row in range(1, rows + 1):
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)} {seed}-{row}"
        if shared and rng.random() < 0.25:
            email = rng.choice(shared)
        elif written and rng.random() < 0.025:
            email = rng.choice(written)
        else:
            email = f"u{row}.s{seed}+tag@{domain}" if row % 7 == 0 else f"u{row}.s{seed}@{domain}"
        written.append(email)
        phone = rng.choice(("", "+44 20 7946 0958", "(555) 123-4567", "555.123.4567", f"+1{row:09d}"))
        shown = rng.choice((email, email.upper(), f"  {email} "))
        cells = [name, shown, phone, rng.choice(("", "x", "=1+1"))]
        if invalid_every and row % invalid_every == 0:
            cells = _break(cells, _INVALID[(row // invalid_every) % len(_INVALID)], domain)
        writer.writerow(cells)
        if row % 50 == 0:
            writer.writerow([] if rng.random() < 0.5 else ["", " ", "", ""])
    return out.getvalue().encode()


def _break(cells: list[str], how: str, domain: str) -> list[str]:
    name, email, phone, note = cells
    local = email.strip().partition("@")[0]
    broken = {
        "email without @": [name, local, phone, note],
        "email without a dotted domain": [name, f"{local}@localhost", phone, note],
        "email with a space": [name, f"{local} x@{domain}", phone, note],
        "empty name": ["  ", email, phone, note],
        "phone": [name, email, "12-ab-34", note],
        "ragged": [name, email, phone],
    }
    return broken[how]


_ADJECTIVES = ("Trail", "Wide", "Émile's", "Ångström", "Zoë's", 'the "Ace"', "Light, compact", "Two\nline")
_THINGS = ("shoe", "helmet", "stove", "tent", "kettle", "lamp", "bag", "bottle")
# (what is wrong, how the row is written): each breaks exactly one rule of `PRODUCTS`.
_PRODUCT_INVALID = (
    "negative price",
    "price with an exponent",
    "price with a decimal comma",
    "fractional stock",
    "negative stock",
    "odd boolean",
    "impossible date",
    "date not in ISO form",
    "empty title",
    "empty sku",
    "sku too long",
    "ragged",
)
PRODUCTS_HEADER = ("Article-Number", " Title ", "PRICE", "stock", "Active", "launch_date", "warehouse")


def generate_products(scope: str, rows: int, *, seed: int, invalid_every: int = 0, shared: Sequence[str] = ()) -> bytes:
    """A CSV file of `rows` data rows of `PRODUCTS` under `PRODUCTS_HEADER` (aliases spelt with `-`
    and `_`, padded and mixed-case names, an extra column), with SKUs `<scope>-p<row>`.

    Deterministic in `seed`, like `generate`: titles carry the seed and row; every `invalid_every`-th
    row breaks one rule (cycling through `_PRODUCT_INVALID`); about one row in 40 repeats an earlier
    SKU of the file and one in 40 takes an earlier one with its letter upper-cased (`-P12`: another
    key, as text keys are compared exactly); about one in 4 takes a SKU of `shared` (for files that
    overlap); every 50th row is followed by a blank line. SKUs come padded now and then; prices as
    `12.50`, `0042.5`, `+7`, `.25`, `100.000`, `-0.00`; stocks as `12`, `007`, `+3`, `-0`; booleans in
    every spelling and case; dates; any of them empty but the SKU and title.
    """
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=rng.choice(("\r\n", "\n")))
    writer.writerow(PRODUCTS_HEADER)
    written: list[str] = []
    plain: list[int] = []  # rows whose SKU is their own
    for row in range(1, rows + 1):
        title = f"{rng.choice(_ADJECTIVES)} {rng.choice(_THINGS)} {seed}-{row}"
        draw = rng.random()
        if shared and draw < 0.25:
            sku = rng.choice(shared)
        elif written and draw < 0.275:
            sku = rng.choice(written)
        elif plain and draw < 0.3:
            sku = f"{scope}-P{rng.choice(plain)}"
        else:
            sku = f"{scope}-p{row}"
            plain.append(row)
        written.append(sku)
        cells = [
            rng.choice((sku, sku, f"  {sku} ")),
            title,
            rng.choice(
                (
                    "",
                    f"{rng.randrange(100_000)}.{rng.randrange(100):02d}",
                    f"00{rng.randrange(100)}.5",
                    f"+{rng.randrange(100)}",
                    f".{rng.randrange(1, 100):02d}",
                    "100.000",
                    "-0.00",
                )
            ),
            rng.choice(("", str(rng.randrange(10_000)), f"00{rng.randrange(10)}", "+3", "-0")),
            rng.choice(("", *(_any_case(rng, spelling) for spelling in (*TRUE_SPELLINGS, *FALSE_SPELLINGS)))),
            rng.choice(
                ("", f"{rng.randrange(1990, 2040)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}", "2024-02-29")
            ),
            rng.choice(("", "A1", "=1+1")),
        ]
        if invalid_every and row % invalid_every == 0:
            cells = _break_product(cells, _PRODUCT_INVALID[(row // invalid_every) % len(_PRODUCT_INVALID)], scope)
        writer.writerow(cells)
        if row % 50 == 0:
            writer.writerow([] if rng.random() < 0.5 else ["", " ", "", "", "", "", ""])
    return out.getvalue().encode()


def _any_case(rng: random.Random, spelling: str) -> str:
    return "".join(letter.upper() if rng.random() < 0.5 else letter for letter in spelling)


def _break_product(cells: list[str], how: str, scope: str) -> list[str]:
    sku, title, price, stock, active, launched, warehouse = cells
    broken = {
        "negative price": [sku, title, "-0.01", stock, active, launched, warehouse],
        "price with an exponent": [sku, title, "1e3", stock, active, launched, warehouse],
        "price with a decimal comma": [sku, title, "12,50", stock, active, launched, warehouse],
        "fractional stock": [sku, title, price, "3.0", active, launched, warehouse],
        "negative stock": [sku, title, price, "-1", active, launched, warehouse],
        "odd boolean": [sku, title, price, stock, "maybe", launched, warehouse],
        "impossible date": [sku, title, price, stock, active, "2023-02-29", warehouse],
        "date not in ISO form": [sku, title, price, stock, active, "29/02/2024", warehouse],
        "empty title": [sku, "  ", price, stock, active, launched, warehouse],
        "empty sku": [" ", title, price, stock, active, launched, warehouse],
        "sku too long": [f"{scope}-{'x' * 64}", title, price, stock, active, launched, warehouse],
        "ragged": [sku, title, price, stock, active, launched],
    }
    return broken[how]


# --- comparison -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """How the stack compares with the oracle; `findings` name uploads, rows, jobs and fields only."""

    rows_checked: int
    lost: int
    """Expected keys the table does not hold."""
    stale: int
    """Expected keys held with another value, type or source (job, key, row)."""
    extra: int
    """Keys of the scope the table holds and the oracle does not expect."""
    job_mismatches: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return not (self.lost or self.stale or self.extra or self.job_mismatches)

    def __str__(self) -> str:
        head = (
            f"{self.rows_checked} rows checked: {self.lost} lost, {self.stale} stale, {self.extra} extra,"
            f" {len(self.job_mismatches)} job mismatches"
        )
        return "\n".join([head, *self.job_mismatches, *self.findings[:20]])


def _plain(value: Any) -> Any:
    """DynamoDB's numbers as ints, in nested maps and lists too."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def stored_items(local: LocalStackProcess, rules: Rules, scope: str) -> dict[str, dict[str, Any]]:
    """Every item of the schema's table whose key is in `scope` (`Rules.in_scope`), by key as text,
    in DynamoDB's wire form (`{"N": "12.5"}`, `{"BOOL": true}`), read with the administrator's keys."""
    attribute = rules.key_column.attribute
    found = {}
    paginator = local.client("dynamodb").get_paginator("scan")
    for page in paginator.paginate(TableName=local.outputs[rules.table_output], ConsistentRead=True):
        for item in page["Items"]:
            [key] = item[attribute].values()
            if rules.in_scope(key, scope):
                found[key] = item
    return found


def stored_users(local: LocalStackProcess, domain: str) -> dict[str, dict[str, Any]]:
    """Every item of the users table whose email is `…@domain`, as plain values."""
    deserializer = TypeDeserializer()
    return {
        email: {k: _plain(deserializer.deserialize(v)) for k, v in item.items()}
        for email, item in stored_items(local, USERS, domain).items()
    }


def stored_job(local: LocalStackProcess, job_id: str) -> dict[str, Any] | None:
    """The job's record (sk "JOB"), straight from the jobs table."""
    found = local.client("dynamodb").get_item(
        TableName=local.outputs["jobsTableName"],
        Key={"jobId": {"S": job_id}, "sk": {"S": "JOB"}},
        ConsistentRead=True,
    )
    if "Item" not in found:
        return None
    deserializer = TypeDeserializer()
    return {k: _plain(deserializer.deserialize(v)) for k, v in found["Item"].items()}


def job_mismatches(job_id: str, record: Mapping[str, Any] | None, expected: ExpectedJob) -> list[str]:
    """What differs between a job's record and its expected outcome, field by field."""
    if record is None:
        return [f"job {job_id}: no record"]
    if record.get("status") != expected.status:
        return [f"job {job_id}: status {record.get('status')}, expected {expected.status}"]
    if expected.status == FAILED:
        return []
    wrong = [
        f"job {job_id}: {name} {record.get(name)}, expected {value}"
        for name, value in (
            ("rowsTotal", expected.rows_total),
            ("rowsValid", expected.rows_valid),
            ("rowsRejected", expected.rows_rejected),
            ("blankLines", expected.blank_lines),
            ("key", expected.key),
        )
        if record.get(name) != value
    ]
    written, superseded = record.get("rowsWritten", 0), record.get("rowsSuperseded", 0)
    if written + superseded != expected.rows_valid:
        wrong.append(
            f"job {job_id}: rowsWritten {written} + rowsSuperseded {superseded} != rowsValid {expected.rows_valid}"
        )
    if record.get("chunksDone") != record.get("chunksTotal"):
        wrong.append(f"job {job_id}: chunksDone {record.get('chunksDone')} != chunksTotal {record.get('chunksTotal')}")
    return wrong


def verify(local: LocalStackProcess, expectation: Expectation, job_ids: Sequence[str], scope: str) -> Verdict:
    """Compare the stack's items whose key is in `scope` (an e-mail domain, a SKU prefix:
    `Rules.in_scope`) and the jobs `job_ids` (one per upload, in upload order) with `expectation`:
    every column's attribute as DynamoDB holds it (type and value; absent when empty), and the
    item's source. Call it once the jobs have ended (`settle`)."""
    if len(job_ids) != len(expectation.jobs):
        raise ValueError(f"{len(job_ids)} job ids for {len(expectation.jobs)} uploads")
    mismatches = [
        wrong
        for job_id, expected in zip(job_ids, expectation.jobs, strict=True)
        for wrong in job_mismatches(job_id, stored_job(local, job_id), expected)
    ]
    rules = expectation.rules
    stored = stored_items(local, rules, scope)
    expected_items = {key: item for key, item in expectation.items.items() if rules.in_scope(key, scope)}
    findings: list[str] = []
    lost = stale = 0
    for key, expected in expected_items.items():
        where = f"upload {expected.upload} ({expected.key}) row {expected.row}"
        item = stored.get(key)
        if item is None:
            lost += 1
            findings.append(f"lost: {where}")
            continue
        wanted = [(column.attribute, column.stored(expected.values[column.attribute])) for column in rules.columns]
        wanted += [
            ("jobId", {"S": job_ids[expected.upload]}),
            ("sourceKey", {"S": expected.key}),
            ("row", {"N": str(expected.row)}),
        ]
        differs = [name for name, want in wanted if item.get(name) != want]
        if differs:
            stale += 1
            held = f"job {_shown(item, 'jobId')} row {_shown(item, 'row')}"
            findings.append(f"stale: {where} held from {held} ({', '.join(differs)})")
    extra = [item for key, item in stored.items() if key not in expected_items]
    findings += [f"extra: from job {_shown(item, 'jobId')} row {_shown(item, 'row')}" for item in extra]
    return Verdict(len(expected_items), lost, stale, len(extra), mismatches, findings)


def _shown(item: Mapping[str, Any], attribute: str) -> str:
    """A source attribute of a stored item (a job id, a row number: no cell), as text."""
    return "".join(map(str, item.get(attribute, {}).values())) or "-"


def settle(local: LocalStackProcess, job_ids: Sequence[str], timeout: float = 180) -> list[dict[str, Any]]:
    """Wait until every job has ended (read from the jobs table, so an API under load does not matter)."""
    ended: dict[str, dict[str, Any]] = {}

    def all_ended() -> bool:
        for job_id in job_ids:
            if job_id not in ended:
                record = stored_job(local, job_id)
                if record is not None and record.get("status") in ENDED:
                    ended[job_id] = record
        return len(ended) == len(job_ids)

    wait_for(all_ended, timeout, f"all {len(job_ids)} jobs to end", 0.5)
    return [ended[job_id] for job_id in job_ids]
