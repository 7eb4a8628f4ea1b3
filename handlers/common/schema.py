"""What an upload's rows are: the stack's schema (`csv-ingest:schema`), declared once.

A schema names its collection (`name`: the API path, the table's logical name, the command's noun),
its `key` (the column whose value identifies an item: one item per key, the latest upload wins) and
its `columns`, each with a `type` from `TYPES`. The program validates it (`parse_schema`, with the
path of any mistake: `schema.columns[2].type`) and hands its canonical JSON (`Schema.to_json`) to
every function, which parses it with the same code: the producer validates and normalises rows by
it, the worker re-validates them and builds items from it, the query API serves `/{name}/{key}`.

Each type has one normal form (`ColumnType.normal_form`); a cell is normalised to it or rejected
with the type's reason, which names the column and the rule, never the cell. The README's table of
types is rendered from these declarations (`render_types_table`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Context, Decimal, InvalidOperation
from functools import cached_property
from typing import Any

from handlers.common.validation import (
    MAX_EMAIL_LENGTH,
    InvalidValue,
    normalize_email,
    normalize_emails,
    normalize_phone,
    normalize_phones,
)


class SchemaError(ValueError):
    """A schema declaration that is not valid: the message starts with the path of the mistake."""


Value = str | int | bool | None
"""A normalised cell as a chunk carries it: text, a whole number, a boolean, or None (empty)."""

# DynamoDB numbers: "up to 38 digits of precision", magnitudes from 1E-130 to 9.9999…E+125
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html#HowItWorks.DataTypes.Number).
MAX_NUMBER_DIGITS = 38
MIN_NUMBER_EXPONENT, MAX_NUMBER_EXPONENT = -130, 125
DEFAULT_TEXT_LENGTH = 256
MAX_TEXT_LENGTH = 4096
# A partition key value is at most 2048 bytes
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html#limits-partition-sort-keys);
# a character is at most 4 bytes of UTF-8.
MAX_KEY_BYTES = 2048

# Spellings of a boolean, matched after trimming and lower-casing.
TRUE_SPELLINGS = ("true", "t", "yes", "y", "1", "on")
FALSE_SPELLINGS = ("false", "f", "no", "n", "0", "off")
_BOOLEANS = {**dict.fromkeys(TRUE_SPELLINGS, True), **dict.fromkeys(FALSE_SPELLINGS, False)}
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INTEGERS = re.compile(r"(?:[+-]?[0-9]+\n)*+[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATES = re.compile(r"(?:[0-9]{4}-[0-9]{2}-[0-9]{2}\n)*+[0-9]{4}-[0-9]{2}-[0-9]{2}")
# ISO 8601's extended format with a UTC offset: date, `T` (or a space), hours and minutes, optional
# seconds and fraction, then `Z` or ±HH:MM (or ±HHMM, ±HH).
_DATETIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?P<h>[0-9]{2}):(?P<m>[0-9]{2})"
    r"(?::(?P<s>[0-9]{2})(?:[.,](?P<f>[0-9]{1,9}))?)?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<zh>[0-9]{2})(?::?(?P<zm>[0-9]{2}))?)"
)


@dataclass(frozen=True)
class Option:
    """A per-type setting of a column: its name, what it must be, and what it means."""

    name: str
    kind: str
    """`integer`, `number` or `values` (a list of text): as the README states it."""
    doc: str


@dataclass(frozen=True)
class ColumnType:
    """A column type: its rules, its normal form, how DynamoDB stores it, and its checks."""

    name: str
    rules: str
    normal_form: str
    attribute_type: str
    """DynamoDB's type for it: `S`, `N` or `BOOL`."""
    normalize: Callable[[Column, str], Value]
    """The cell's normal form (None for an empty cell), or `InvalidValue` with the type's reason."""
    options: tuple[Option, ...] = ()
    many: Callable[[Column, list[str]], list[Value] | None] | None = None
    """Faster `normalize` of many cells: each one's normal form, or None when one is invalid."""

    def normalize_many(self, column: Column, raws: list[str]) -> list[Value] | None:
        return (self.many or _each)(column, raws)

    @property
    def json_type(self) -> type:
        """What a chunk carries: `str`, `int` or `bool`."""
        return {"integer": int, "boolean": bool}.get(self.name, str)


@dataclass(frozen=True)
class Column:
    """One declared column."""

    name: str
    """How reasons, the header's spellings and the rejects report name it."""
    type: ColumnType
    attribute: str
    """The item attribute and API field it is stored as (its name unless declared)."""
    aliases: tuple[str, ...] = ()
    required: bool = False
    max_length: int = DEFAULT_TEXT_LENGTH
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    values: tuple[str, ...] = ()
    enum_lookup: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    """`values` by their case-folded spelling."""

    @property
    def spellings(self) -> tuple[str, ...]:
        """The header cells that name it, as written in the declaration."""
        return (self.name, *self.aliases)

    def normalize(self, raw: str) -> Value:
        """The cell's normal form, None when it is empty and optional; `InvalidValue` otherwise."""
        if not raw.strip():
            if self.required:
                raise InvalidValue(f"{self.name} is empty")
            return None
        return self.type.normalize(self, raw)

    def normalize_many(self, raws: list[str]) -> list[Value] | None:
        """`normalize` of each cell, or None when one is invalid (then `normalize` says why)."""
        return self.type.normalize_many(self, raws)

    def is_normal(self, value: Any) -> bool:
        """Whether `value`, as a chunk carries it, is a normal form of this column: what the
        producer would have made of some cell."""
        if value is None:
            return not self.required
        if type(value) is not self.type.json_type:  # exactly: a bool is no integer here
            return False
        try:
            return self.normalize(render(value)) == value
        except InvalidValue:
            return False


def render(value: Value) -> str:
    """A normal value as text: what `Column.normalize` takes back to it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _each(column: Column, raws: list[str]) -> list[Value] | None:
    """`Column.normalize` of each cell, or None when one is invalid."""
    try:
        return [column.normalize(raw) for raw in raws]
    except InvalidValue:
        return None


def _match_key(spelling: str) -> str:
    """How header cells are compared with spellings: case, spaces, `-` and `_` ignored."""
    return re.sub(r"[\s_-]+", "", spelling).casefold()


# --- the types -------------------------------------------------------------------------------


def _text(column: Column, raw: str) -> str:
    text = raw.strip()
    if len(text) > column.max_length:
        raise InvalidValue(f"{column.name} is {len(text)} characters long; at most {column.max_length} allowed")
    return text


def _texts(column: Column, raws: list[str]) -> list[Value] | None:
    texts = list(map(str.strip, raws))
    if not texts or max(map(len, texts)) > column.max_length:
        return None
    if min(map(len, texts)) == 0:
        return None if column.required else [text or None for text in texts]
    return texts  # type: ignore[return-value]


def _email(column: Column, raw: str) -> str:
    return normalize_email(raw, column.name)


def _emails(column: Column, raws: list[str]) -> list[Value] | None:
    if not column.required and not all(map(str.strip, raws)):
        return _each(column, raws)  # blanks are absent values: cell by cell
    return normalize_emails(raws)  # type: ignore[return-value]


def _phone(column: Column, raw: str) -> str:
    phone = normalize_phone(raw, column.name)
    assert phone is not None, "an empty cell never reaches a type"
    return phone


def _phones(column: Column, raws: list[str]) -> list[Value] | None:
    if column.required and not all(map(str.strip, raws)):
        return None  # a required phone is blank
    return normalize_phones(raws)  # type: ignore[return-value]


def _in_range(column: Column, number: Decimal) -> None:
    if column.minimum is not None and number < column.minimum:
        raise InvalidValue(f"{column.name} is below its minimum, {_plain(column.minimum)}")
    if column.maximum is not None and number > column.maximum:
        raise InvalidValue(f"{column.name} is above its maximum, {_plain(column.maximum)}")


def _integer(column: Column, raw: str) -> int:
    text = raw.strip()
    if not _INTEGER.fullmatch(text):
        raise InvalidValue(f"{column.name} is not a whole number (digits, an optional sign)")
    # Counted before `int`, which refuses more than 4300 digits with an error of its own
    # (https://docs.python.org/3/library/stdtypes.html#int-max-str-digits).
    digits = text.lstrip("+-").lstrip("0")
    if len(digits) > MAX_NUMBER_DIGITS:
        raise InvalidValue(f"{column.name} has more than {MAX_NUMBER_DIGITS} digits")
    number = int(digits or "0") * (-1 if text.startswith("-") else 1)
    _in_range(column, Decimal(number))
    return number


def _decimal(column: Column, raw: str) -> str:
    text = raw.strip()
    if not _DECIMAL.fullmatch(text):
        raise InvalidValue(f"{column.name} is not a decimal number (digits, an optional sign and one '.')")
    number = Decimal(text)  # exact, whatever its length: a context rounds only in arithmetic
    if number.is_zero():
        number = Decimal(0)
    else:
        # Significant digits counted from the exact value, before `normalize` (which rounds to its
        # context's precision): the digits between the first and the last that is not a zero.
        significant = "".join(map(str, number.as_tuple().digits)).strip("0")
        if len(significant) > MAX_NUMBER_DIGITS:
            raise InvalidValue(f"{column.name} has more than {MAX_NUMBER_DIGITS} significant digits")
        number = number.normalize(_DECIMAL_CONTEXT)
        if not MIN_NUMBER_EXPONENT <= number.adjusted() <= MAX_NUMBER_EXPONENT:
            raise InvalidValue(f"{column.name} is outside DynamoDB's range of numbers (1E-130 to 1E+126)")
    _in_range(column, number)
    return _plain(number)


# Exact for what reaches it: at most 38 significant digits (`_decimal` refuses more first), and
# exponents far beyond DynamoDB's range, which is checked after.
_DECIMAL_CONTEXT = Context(prec=MAX_NUMBER_DIGITS, Emin=-999999, Emax=999999)


def _plain(number: Decimal) -> str:
    """A decimal without exponent, trailing zeros or a trailing point: `12.5`, `-0.75`, `100`."""
    return format(number, "f")


def _integers(column: Column, raws: list[str]) -> list[Value] | None:
    texts = list(map(str.strip, raws))
    if not _all_match(_INTEGERS, texts) or max(map(len, texts)) > MAX_NUMBER_DIGITS:
        return _each(column, raws)  # blanks, or a cell to look at closely
    numbers = list(map(int, texts))
    low, high = min(numbers), max(numbers)
    if (column.minimum is not None and low < column.minimum) or (column.maximum is not None and high > column.maximum):
        return None
    return numbers  # type: ignore[return-value]


def _all_match(pattern: re.Pattern[str], values: list[str]) -> bool:
    """Whether every value matches `pattern`'s form, checked in one call over the values joined by
    line ends (which none of the forms holds)."""
    joined = "\n".join(values)
    return bool(values) and joined.count("\n") == len(values) - 1 and pattern.fullmatch(joined) is not None


def _lookups(lookup: Callable[[Column], Mapping[str, Any]], fold: Callable[[str], str]) -> Callable[..., Any]:
    """A `many` for a type whose cells are looked up, once folded, in a table of the column's."""

    def many(column: Column, raws: list[str]) -> list[Value] | None:
        values = list(map(lookup(column).get, map(fold, map(str.strip, raws))))
        return _each(column, raws) if None in values else values

    return many


def _boolean(column: Column, raw: str) -> bool:
    value = _BOOLEANS.get(raw.strip().lower())
    if value is None:
        raise InvalidValue(
            f"{column.name} is not a boolean ({'/'.join(TRUE_SPELLINGS)} or {'/'.join(FALSE_SPELLINGS)})"
        )
    return value


def _dates(column: Column, raws: list[str]) -> list[Value] | None:
    texts = list(map(str.strip, raws))
    if not _all_match(_DATES, texts):
        return _each(column, raws)
    try:
        list(map(date.fromisoformat, texts))  # each a real day
    except ValueError:
        return None
    return texts  # type: ignore[return-value]


def _date(column: Column, raw: str) -> str:
    text = raw.strip()
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise InvalidValue(f"{column.name} is not a date in ISO 8601 form (YYYY-MM-DD)") from None


def _datetime(column: Column, raw: str) -> str:
    matched = _DATETIME.fullmatch(raw.strip())
    fraction = "" if matched is None else matched["f"] or ""
    if fraction.rstrip("0")[3:]:
        raise InvalidValue(f"{column.name} is more precise than a millisecond")
    try:
        if matched is None:
            raise ValueError(raw)
        zone = "+00:00" if matched["utc"] else f"{matched['sign']}{matched['zh']}:{matched['zm'] or '00'}"
        if int(matched["zm"] or 0) >= 60:  # `fromisoformat` reads +05:60 as +06:00
            raise ValueError(zone)
        text = f"{matched['date']}T{matched['h']}:{matched['m']}:{matched['s'] or '00'}.{(fraction + '000')[:3]}{zone}"
        moment = datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: in UTC, before year 1 or after 9999
        raise InvalidValue(
            f"{column.name} is not a date and time in ISO 8601 form with a UTC offset (YYYY-MM-DDTHH:MM[:SS[.fff]]"
            " then Z or ±HH:MM)"
        ) from None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _enum(column: Column, raw: str) -> str:
    value = column.enum_lookup.get(raw.strip().casefold())
    if value is None:
        raise InvalidValue(f"{column.name} is not one of its {len(column.values)} values ({', '.join(column.values)})")
    return value


_RANGE = (
    Option("min", "number", "the least value allowed"),
    Option("max", "number", "the greatest value allowed"),
)

TYPES: Mapping[str, ColumnType] = {
    kind.name: kind
    for kind in (
        ColumnType(
            "text",
            "trimmed; at most `maxLength` characters",
            "the cell without leading or trailing white space",
            "S",
            _text,
            (Option("maxLength", "integer", f"1–{MAX_TEXT_LENGTH}; default {DEFAULT_TEXT_LENGTH}"),),
            _texts,
        ),
        ColumnType(
            "email",
            "one `@`, a dotted domain, no spaces (WHATWG's valid email address);"
            f" at most {MAX_EMAIL_LENGTH} characters",
            "trimmed and lower-cased",
            "S",
            _email,
            many=_emails,
        ),
        ColumnType(
            "phone",
            "spaces, dashes, dots and parentheses removed, then an optional `+` and 6 to 15 digits",
            "`+`? and the digits: `+4915112345678`",
            "S",
            _phone,
            many=_phones,
        ),
        ColumnType(
            "integer",
            f"an optional sign and digits; at most {MAX_NUMBER_DIGITS} digits; within `min`/`max`",
            "no `+`, no leading zeros: `-42`; a JSON number in chunks, a DynamoDB number (N)",
            "N",
            _integer,
            _RANGE,
            _integers,
        ),
        ColumnType(
            "decimal",
            f"an optional sign, digits and one `.` (no exponent, no thousands separator); at most"
            f" {MAX_NUMBER_DIGITS} significant digits; within `min`/`max`",
            "exact, without exponent, leading or trailing zeros: `12.5`, `-0.75`, `100`; a DynamoDB number (N)",
            "N",
            _decimal,
            _RANGE,
        ),
        ColumnType(
            "boolean",
            f"one of {', '.join(TRUE_SPELLINGS)} (true) or {', '.join(FALSE_SPELLINGS)} (false), any case",
            "`true` or `false`; a DynamoDB boolean (BOOL)",
            "BOOL",
            _boolean,
            many=_lookups(lambda column: _BOOLEANS, str.lower),
        ),
        ColumnType("date", "ISO 8601 calendar date, `YYYY-MM-DD`", "`2026-12-06`", "S", _date, many=_dates),
        ColumnType(
            "datetime",
            "ISO 8601 date and time with a UTC offset: `YYYY-MM-DDTHH:MM`, then optionally `:SS` and a"
            " fraction of up to milliseconds (after `.` or `,`), then `Z`, `±HH:MM`, `±HHMM` or `±HH`;"
            " `T`, `t` or a space between date and time; any case",
            "in UTC, to the millisecond, with `Z`: `2026-12-06T15:43:50.000Z`",
            "S",
            _datetime,
        ),
        ColumnType(
            "enum",
            "one of `values`, matched case-insensitively after trimming",
            "the value as declared",
            "S",
            _enum,
            (Option("values", "values", "the values allowed, each as it is stored"),),
            _lookups(lambda column: column.enum_lookup, str.casefold),
        ),
    )
}


# --- the schema ------------------------------------------------------------------------------

# The item's attributes the pipeline writes besides the columns (handlers/worker/writes.py): no
# column may be stored as one of them.
META_ATTRIBUTES = (
    "rowVersion",
    "uploadedAt",
    "updatedAt",
    "jobId",
    "sourceBucket",
    "sourceKey",
    "sourceVersionId",
    "row",
)
# The collection names the API path `/{name}`, beside `/jobs`, and the command's noun.
_COLLECTION = re.compile(r"(?=.{1,40}$)[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
# `jobs` is the API's other collection; `root` and `proxy` are the names the program gives the API's
# root resource and its catch-all (infra/api.py), which `/{name}`'s resource would share.
RESERVED_COLLECTIONS = ("jobs", "root", "proxy")
# A column's name and attribute: a letter, then letters, digits and `_` (a valid identifier in
# DynamoDB's expressions without a placeholder is not needed: every name goes through one).
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
MAX_COLUMNS = 100

# The delimiters a file may use, by the names a stack declares them with, in the order detection
# tries them (`handlers/producer/dialect.py`): comma first, the default.
DELIMITERS: Mapping[str, str] = {"comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|"}
# The encodings a stack may declare, as Python's codecs name them
# (https://docs.python.org/3/library/codecs.html#standard-encodings). `utf-16` must start with its
# byte order mark, which says its byte order.
ENCODINGS = ("utf-8", "cp1252", "latin-1", "utf-16")
_ENCODING_SPELLINGS = {
    **{name: name for name in ENCODINGS},
    "utf8": "utf-8",
    "windows-1252": "cp1252",
    "latin1": "latin-1",
    "iso-8859-1": "latin-1",
    "utf16": "utf-16",
}


def delimiter_name(delimiter: str) -> str:
    """How messages and settings name a delimiter: `comma`, `semicolon`, `tab`, `pipe`."""
    return next(name for name, character in DELIMITERS.items() if character == delimiter)


@dataclass(frozen=True)
class Format:
    """How the stack's files are written (`csv-ingest:schema.format`)."""

    delimiter: str | None = None
    """The delimiter character, fixed by the stack; None: detected from each file's header line."""
    encoding: str = "utf-8"
    """One of `ENCODINGS`."""

    def declaration(self) -> dict[str, str]:
        """What differs from the default, as a stack declares it (delimiters by name)."""
        declared = {}
        if self.delimiter is not None:
            declared["delimiter"] = delimiter_name(self.delimiter)
        if self.encoding != "utf-8":
            declared["encoding"] = self.encoding
        return declared


def _parse_format(raw: Any, path: str) -> Format:
    if not isinstance(raw, Mapping):
        raise SchemaError(f"{path} is not a mapping; declare delimiter and/or encoding")
    _no_unknown(raw, ("delimiter", "encoding"), path)
    delimiter = raw.get("delimiter")
    if delimiter is not None:
        spelled = delimiter.strip().lower() if isinstance(delimiter, str) and delimiter.strip() else delimiter
        if spelled in DELIMITERS:
            delimiter = DELIMITERS[spelled]
        elif spelled not in DELIMITERS.values():
            names = ", ".join(DELIMITERS)
            raise SchemaError(
                f"{path}.delimiter = {delimiter!r} is not allowed; use one of: {names} (or leave it out: each file's"
                " delimiter is then detected from its header line)"
            )
    encoding = raw.get("encoding", "utf-8")
    spelled = encoding.strip().lower().replace("_", "-") if isinstance(encoding, str) else None
    if spelled not in _ENCODING_SPELLINGS:
        raise SchemaError(f"{path}.encoding = {encoding!r} is not allowed; use one of: {', '.join(ENCODINGS)}")
    return Format(delimiter, _ENCODING_SPELLINGS[spelled])


@dataclass(frozen=True)
class Schema:
    """A stack's schema: its collection's name, its key column and its columns in order."""

    name: str
    key: str
    """The key column's name."""
    columns: tuple[Column, ...]
    format: Format = Format()
    """How the stack's files are written: not part of the layout (`fingerprint`), since it changes
    how a file is read, not what its rows are."""

    @cached_property
    def key_index(self) -> int:
        return next(i for i, column in enumerate(self.columns) if column.name == self.key)

    @property
    def key_column(self) -> Column:
        return self.columns[self.key_index]

    @property
    def key_attribute(self) -> str:
        return self.key_column.attribute

    @cached_property
    def attributes(self) -> tuple[str, ...]:
        return tuple(column.attribute for column in self.columns)

    @cached_property
    def checked_order(self) -> tuple[int, ...]:
        """The columns' positions in the order a row's cells are checked: the key, then the rest as
        declared (a row's reason is its first broken rule)."""
        key = self.key_index
        return (key, *(i for i in range(len(self.columns)) if i != key))

    def to_json(self) -> str:
        """The canonical declaration, compact: what every function parses (`parse_schema`)."""
        return json.dumps(self.declaration(), separators=(",", ":"), sort_keys=True)

    def declaration(self) -> dict[str, Any]:
        """The schema as `csv-ingest:schema` declares it, with only what differs from defaults."""
        declared: dict[str, Any] = {
            "name": self.name,
            "key": self.key,
            "columns": [_column_declaration(c) for c in self.columns],
        }
        if fmt := self.format.declaration():
            declared["format"] = fmt
        return declared

    @cached_property
    def fingerprint(self) -> str:
        """What chunks carry to say how their rows are laid out: 16 hex digits of the SHA-256 of the
        collection, the key and each column's attribute and type, in order. A chunk of another
        layout means other things by its values: the worker refuses it. A change of anything else
        (aliases, required, bounds, lengths, values) keeps the layout, and a chunk in flight is
        checked value by value against the rules of now."""
        layout = [self.name, self.key_attribute, [[c.attribute, c.type.name] for c in self.columns]]
        return hashlib.sha256(json.dumps(layout, separators=(",", ":")).encode()).hexdigest()[:16]

    def match_header(self, cell: str) -> Column | None:
        """The column a header cell names, if any."""
        return self._spellings.get(_match_key(cell))

    @cached_property
    def _spellings(self) -> dict[str, Column]:
        return {_match_key(spelling): column for column in self.columns for spelling in column.spellings}


def _column_declaration(column: Column) -> dict[str, Any]:
    declared: dict[str, Any] = {"name": column.name, "type": column.type.name}
    if column.attribute != column.name:
        declared["attribute"] = column.attribute
    if column.aliases:
        declared["aliases"] = list(column.aliases)
    if column.required:
        declared["required"] = True
    if column.type.name == "text" and column.max_length != DEFAULT_TEXT_LENGTH:
        declared["maxLength"] = column.max_length
    if column.minimum is not None:
        declared["min"] = _plain(column.minimum)
    if column.maximum is not None:
        declared["max"] = _plain(column.maximum)
    if column.values:
        declared["values"] = list(column.values)
    return declared


_SCHEMA_FIELDS = ("name", "key", "columns", "format")
_COLUMN_FIELDS = ("name", "type", "attribute", "aliases", "required")


def parse_schema(raw: Any, path: str = "schema") -> Schema:
    """The schema `raw` declares (a mapping, or its JSON), checked; `SchemaError` names the path of
    the first mistake and what is allowed."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise SchemaError(f"{path} is not a mapping; declare name, key and columns") from None
    if not isinstance(raw, Mapping):
        raise SchemaError(f"{path} is not a mapping; declare name, key and columns")
    if set(raw) == {"format"}:  # the default's rows, from files written another way
        raw = {**DEFAULT_SCHEMA_DECLARATION, "format": raw["format"]}
    _no_unknown(raw, _SCHEMA_FIELDS, path)
    name = _text_field(raw, "name", path)
    if not _COLLECTION.fullmatch(name):
        raise SchemaError(
            f"{path}.name = {name!r} is not allowed: a lowercase letter, then lowercase letters and digits, in"
            " words joined by single '-', at most 40 characters"
        )
    if name in RESERVED_COLLECTIONS:
        raise SchemaError(
            f"{path}.name = {name!r} is taken: the API's {', '.join(RESERVED_COLLECTIONS)} resources are named so;"
            " choose another"
        )
    declared = raw.get("columns")
    if not isinstance(declared, list) or not declared:
        raise SchemaError(f"{path}.columns is not a list of columns; declare at least one")
    if len(declared) > MAX_COLUMNS:
        raise SchemaError(f"{path}.columns has {len(declared)} columns; at most {MAX_COLUMNS}")
    key = _text_field(raw, "key", path)
    columns = tuple(_parse_column(entry, f"{path}.columns[{i}]", key) for i, entry in enumerate(declared))
    _check_distinct(columns, path)
    if key not in {column.name for column in columns}:
        names = ", ".join(column.name for column in columns)
        raise SchemaError(f"{path}.key = {key!r} names no column; use one of: {names}")
    fmt = _parse_format(raw["format"], f"{path}.format") if raw.get("format") is not None else Format()
    schema = Schema(name=name, key=key, columns=columns, format=fmt)
    _check_key(schema, f"{path}.columns[{schema.key_index}]")
    size = len(schema.to_json().encode())
    if size > MAX_SCHEMA_JSON_BYTES:
        raise SchemaError(
            f"{path} is {size} bytes as the functions receive it; at most {MAX_SCHEMA_JSON_BYTES} (a Lambda"
            " function's environment holds 4 KB): fewer columns, aliases or values"
        )
    return schema


def _no_unknown(raw: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    unknown = sorted(str(name) for name in raw if name not in allowed)
    if unknown:
        raise SchemaError(f"{path}.{unknown[0]} is not a setting here; allowed: {', '.join(allowed)}")


def _text_field(raw: Mapping[str, Any], name: str, path: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        raise SchemaError(f"{path}.{name} is missing or not text")
    return value.strip()


def _parse_column(raw: Any, path: str, key: str) -> Column:
    if not isinstance(raw, Mapping):
        raise SchemaError(f"{path} is not a mapping; declare its name and type")
    name = _text_field(raw, "name", path)
    if not _IDENTIFIER.fullmatch(name):
        raise SchemaError(
            f"{path}.name = {name!r} is not allowed: a letter, then letters, digits and '_', at most 64 characters"
        )
    type_name = _text_field(raw, "type", path)
    kind = TYPES.get(type_name)
    if kind is None:
        raise SchemaError(f"{path}.type = {type_name!r} is not allowed; use one of: {', '.join(TYPES)}")
    _no_unknown(raw, (*_COLUMN_FIELDS, *(option.name for option in kind.options)), path)
    attribute = raw.get("attribute", name)
    if not isinstance(attribute, str) or not _IDENTIFIER.fullmatch(attribute):
        raise SchemaError(f"{path}.attribute = {attribute!r} is not allowed: a letter, then letters, digits and '_'")
    if attribute in META_ATTRIBUTES:
        raise SchemaError(
            f"{path}.attribute = {attribute!r} is an attribute the pipeline writes; not one of:"
            f" {', '.join(META_ATTRIBUTES)}"
        )
    aliases = raw.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) and a.strip() for a in aliases):
        raise SchemaError(f"{path}.aliases is not a list of header spellings{_yaml_hint(aliases)}")
    required = raw.get("required", False)
    if not isinstance(required, bool):
        raise SchemaError(f"{path}.required = {required!r} is not allowed; use true or false")
    options: dict[str, Any] = {}
    if "maxLength" in raw:
        length = raw["maxLength"]
        if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= MAX_TEXT_LENGTH:
            raise SchemaError(f"{path}.maxLength = {length!r} is not allowed; use a whole number 1–{MAX_TEXT_LENGTH}")
        options["max_length"] = length
    for option, attribute_name in (("min", "minimum"), ("max", "maximum")):
        if option in raw:
            options[attribute_name] = _bound(raw[option], f"{path}.{option}", integer=type_name == "integer")
    low, high = options.get("minimum"), options.get("maximum")
    if low is not None and high is not None and low > high:
        raise SchemaError(f"{path}.min is greater than {path}.max")
    if type_name == "enum":
        values = raw.get("values")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v.strip() for v in values):
            raise SchemaError(
                f"{path}.values is not a list of the values allowed; declare at least one{_yaml_hint(values)}"
            )
        folded = [v.strip().casefold() for v in values]
        if len(set(folded)) != len(folded):
            raise SchemaError(f"{path}.values lists a value more than once (compared case-insensitively)")
        options["values"] = tuple(v.strip() for v in values)
        options["enum_lookup"] = dict(zip(folded, options["values"], strict=True))
    return Column(
        name=name,
        type=kind,
        attribute=attribute,
        aliases=tuple(a.strip() for a in aliases),
        required=required or name == key,
        **options,
    )


def _yaml_hint(values: Any) -> str:
    """A list holding a boolean was most likely written `yes`, `no`, `on` or `off` unquoted: YAML 1.1
    reads them so (https://yaml.org/type/bool.html), and so do some of the tools that read stack files."""
    if isinstance(values, list) and any(isinstance(value, bool) for value in values):
        return " (a boolean is among them: quote yes, no, on, off, true and false to mean the words)"
    return ""


def _bound(raw: Any, path: str, *, integer: bool) -> Decimal:
    text = str(raw).strip() if not isinstance(raw, bool) else ""
    pattern = _INTEGER if integer else _DECIMAL
    if not pattern.fullmatch(text):
        kind = "a whole number" if integer else "a decimal number"
        raise SchemaError(f"{path} = {raw!r} is not allowed; use {kind}")
    try:
        return Decimal(text).normalize(_DECIMAL_CONTEXT) if text.strip("+-0.") else Decimal(0)
    except InvalidOperation:
        raise SchemaError(f"{path} = {raw!r} is not a number") from None


def _check_distinct(columns: tuple[Column, ...], path: str) -> None:
    seen: dict[str, int] = {}
    attributes: dict[str, int] = {}
    for i, column in enumerate(columns):
        if column.attribute in attributes:
            raise SchemaError(
                f"{path}.columns[{i}] is stored as {column.attribute!r}, as columns[{attributes[column.attribute]}] is"
            )
        attributes[column.attribute] = i
        for spelling in column.spellings:
            match = _match_key(spelling)
            if match in seen and seen[match] != i:
                raise SchemaError(
                    f"{path}.columns[{i}]: the header spelling {spelling!r} also names columns[{seen[match]}]"
                    " (spellings are compared ignoring case, spaces, '-' and '_')"
                )
            seen[match] = i


def _check_key(schema: Schema, path: str) -> None:
    column = schema.key_column
    if column.type.attribute_type not in ("S", "N"):
        raise SchemaError(f"{path}.type = {column.type.name!r} cannot be a key; DynamoDB keys are strings or numbers")
    # A partition key value is at most 2048 bytes (MAX_KEY_BYTES).
    if column.type.name == "text" and 4 * column.max_length > MAX_KEY_BYTES:
        raise SchemaError(
            f"{path}.maxLength = {column.max_length} is too long for a key: at most {MAX_KEY_BYTES // 4} characters"
            f" (a key is at most {MAX_KEY_BYTES} bytes of UTF-8)"
        )


# The environment variable the program hands every function its schema in (`Schema.to_json`).
# Lambda holds at most 4 KB of environment variables per function
# (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): the schema gets half.
SCHEMA_VARIABLE = "SCHEMA"
MAX_SCHEMA_JSON_BYTES = 2048


def from_environment(environ: Mapping[str, str]) -> Schema:
    """The schema the program declared for this function (`SCHEMA_VARIABLE`): a function without one
    was not deployed by this program, and stops at its import."""
    if SCHEMA_VARIABLE not in environ:
        raise SchemaError(f"the {SCHEMA_VARIABLE} environment variable is not set; the program sets it")
    return parse_schema(environ[SCHEMA_VARIABLE], SCHEMA_VARIABLE)


# The seed's users pipeline: today's item attributes, API paths, answers and reject reasons.
DEFAULT_SCHEMA_DECLARATION: Mapping[str, Any] = {
    "name": "users",
    "key": "mail",
    "columns": [
        {"name": "name", "type": "text", "required": True, "aliases": ["Full Name"]},
        # Matching ignores case, spaces, `-` and `_`: `email` is also `E-mail`, `e_mail` and `EMAIL`.
        {"name": "mail", "type": "email", "attribute": "email", "aliases": ["email", "Email Address"]},
        {"name": "phone", "type": "phone", "aliases": ["Phone Number"]},
    ],
}
DEFAULT_SCHEMA = parse_schema(DEFAULT_SCHEMA_DECLARATION)


def render_types_table() -> str:
    """The README's table of column types, from their declarations."""
    lines = ["| type | accepted | normal form | options |", "|---|---|---|---|"]
    for kind in TYPES.values():
        options = "; ".join(f"`{o.name}`: {o.doc}" for o in kind.options) or "—"
        lines.append(f"| `{kind.name}` | {kind.rules} | {kind.normal_form} | {options} |")
    return "\n".join(lines)
