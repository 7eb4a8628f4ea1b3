"""The schema declaration (`handlers/common/schema.py`): what it accepts, what it refuses and how it
names the mistake, and what every function reads back from the program's JSON."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import pytest

from handlers.common.schema import (
    DEFAULT_SCHEMA,
    DEFAULT_SCHEMA_DECLARATION,
    MAX_SCHEMA_JSON_BYTES,
    SCHEMA_VARIABLE,
    Format,
    InvalidValue,
    SchemaError,
    from_environment,
    parse_schema,
)

PRODUCTS: dict[str, Any] = {
    "name": "products",
    "key": "sku",
    "columns": [
        {"name": "sku", "type": "text", "maxLength": 64, "aliases": ["SKU code", "article"]},
        {"name": "price", "type": "decimal", "min": 0, "max": "9999.99"},
        {"name": "stock", "type": "integer", "min": 0},
        {"name": "active", "type": "boolean", "required": True},
        {"name": "since", "type": "date"},
        {"name": "status", "type": "enum", "values": ["Active", "Retired"]},
    ],
}


def with_change(path: list[Any], value: Any, base: dict[str, Any] = PRODUCTS) -> dict[str, Any]:
    declaration = copy.deepcopy(base)
    target = declaration
    for step in path[:-1]:
        target = target[step]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return declaration


def test_the_default_is_the_users_pipeline():
    schema = DEFAULT_SCHEMA
    assert (schema.name, schema.key, schema.key_attribute) == ("users", "mail", "email")
    assert schema.attributes == ("name", "email", "phone")
    assert [column.type.name for column in schema.columns] == ["text", "email", "phone"]
    assert [column.required for column in schema.columns] == [True, True, False]
    assert schema.checked_order == (1, 0, 2)  # mail's reason first, as the seed's rows had it


def test_what_functions_read_back_is_the_declared_schema():
    schema = parse_schema(PRODUCTS)
    again = from_environment({SCHEMA_VARIABLE: schema.to_json()})
    assert again == schema and again.fingerprint == schema.fingerprint
    assert parse_schema(json.dumps(DEFAULT_SCHEMA_DECLARATION)) == DEFAULT_SCHEMA
    # Only what differs from a default is written: the schema travels in a function's environment.
    assert '"required":false' not in schema.to_json() and '"attribute"' not in schema.to_json()


def test_a_function_without_its_schema_stops():
    with pytest.raises(SchemaError, match=f"the {SCHEMA_VARIABLE} environment variable is not set"):
        from_environment({})


def test_the_fingerprint_changes_with_the_layout_of_rows_only():
    products = parse_schema(PRODUCTS).fingerprint
    # Another layout: chunks made with it mean other things by their values.
    for path, value in (
        (["columns", 2, "type"], "decimal"),
        (["columns", 2, "attribute"], "onHand"),
        (["name"], "items"),
    ):
        assert parse_schema(with_change(path, value)).fingerprint != products, path
    reordered = with_change(["columns"], [PRODUCTS["columns"][0], *reversed(PRODUCTS["columns"][1:])])
    assert parse_schema(reordered).fingerprint != products
    # The same layout under other rules: chunks in flight are checked against the rules of now instead.
    for path, value in (
        (["columns", 1, "max"], "99999.99"),
        (["columns", 0, "aliases"], ["ref"]),
        (["columns", 3, "required"], False),
    ):
        assert parse_schema(with_change(path, value)).fingerprint == products, path


def test_numbers_too_long_are_refused_by_their_rule_whatever_their_length():
    schema = parse_schema(PRODUCTS)
    stock, price = schema.columns[2], schema.columns[1]
    # Python's int() refuses more than 4300 digits with an error of its own; a cell is a reject, never a crash.
    with pytest.raises(InvalidValue, match=r"^stock has more than 38 digits$"):
        stock.normalize("9" * 4301)
    assert stock.normalize("0" * 5000 + "7") == 7
    # Decimals are exact at any length: digits beyond a context's precision are never rounded away.
    with pytest.raises(InvalidValue, match=r"^price has more than 38 significant digits$"):
        price.normalize("0." + "9" * 1100)
    with pytest.raises(InvalidValue, match=r"^price has more than 38 significant digits$"):
        price.normalize("1." + "0" * 1100 + "1")
    assert price.normalize("0" * 2000 + "12.50" + "0" * 2000) == "12.5"


def test_an_offset_of_sixty_minutes_or_more_is_no_offset():
    at = parse_schema(with_change(["columns", 4, "type"], "datetime")).columns[4]
    assert at.normalize("2026-12-06T10:00+05:59") == "2026-12-06T04:01:00.000Z"
    with pytest.raises(InvalidValue, match="is not a date and time in ISO 8601 form"):
        at.normalize("2026-12-06T10:00+05:60")


def test_a_boolean_among_yaml_values_is_named_with_how_to_quote_it():
    # PyYAML (YAML 1.1) reads `values: [yes, no]` as two booleans.
    with pytest.raises(SchemaError, match=r"values is not a list .* quote yes, no, on, off"):
        parse_schema(with_change(["columns", 5, "values"], [True, False]))


def test_header_spellings_ignore_case_spaces_dashes_and_underscores():
    schema = parse_schema(PRODUCTS)
    for cell in ("sku", " SKU ", "Sku-Code", "sku_code", "SKU code", "ARTICLE", "s k u"):
        assert schema.match_header(cell) is schema.key_column, cell
    assert schema.match_header("skus") is None
    assert DEFAULT_SCHEMA.match_header("E-mail") is DEFAULT_SCHEMA.key_column
    assert DEFAULT_SCHEMA.match_header("Mail") is DEFAULT_SCHEMA.key_column


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ["columns", 2, "type"],
            "int",
            r"schema.columns\[2\].type = 'int' is not allowed; use one of: text, email, phone, integer,",
        ),
        (
            ["columns", 0, "maxLength"],
            0,
            r"schema.columns\[0\].maxLength = 0 is not allowed; use a whole number 1–4096",
        ),
        (["columns", 1, "values"], ["a"], r"schema.columns\[1\].values is not a setting here; allowed: name, type,"),
        (["columns", 5, "values"], [], r"schema.columns\[5\].values is not a list of the values allowed"),
        (["columns", 5, "values"], ["On", "on"], r"schema.columns\[5\].values lists a value more than once"),
        (["columns", 1, "min"], "cheap", r"schema.columns\[1\].min = 'cheap' is not allowed; use a decimal number"),
        (["columns", 2, "min"], "1.5", r"schema.columns\[2\].min = '1.5' is not allowed; use a whole number"),
        (["columns", 1, "min"], 10000, r"schema.columns\[1\].min is greater than schema.columns\[1\].max"),
        (["columns", 3, "required"], "yes", r"schema.columns\[3\].required = 'yes' is not allowed; use true or false"),
        (["columns", 4, "attribute"], "rowVersion", r"schema.columns\[4\].attribute = 'rowVersion' is an attribute"),
        (["columns", 4, "name"], "sku", r"schema.columns\[4\] is stored as 'sku', as columns\[0\] is"),
        (["columns", 4, "name"], "SKU_", r"schema.columns\[4\]: the header spelling 'SKU_' also names columns\[0\]"),
        (["columns", 4, "aliases"], ["Article"], r"the header spelling 'Article' also names columns\[0\]"),
        (["columns", 4, "name"], "2nd", r"schema.columns\[4\].name = '2nd' is not allowed: a letter, then"),
        (["key"], "id", r"schema.key = 'id' names no column; use one of: sku, price, stock, active, since, status"),
        (["key"], "active", r"schema.columns\[3\].type = 'boolean' cannot be a key; DynamoDB keys are strings"),
        (["name"], "Products", r"schema.name = 'Products' is not allowed: a lowercase letter"),
        (["name"], "jobs", r"schema.name = 'jobs' is taken: the API's jobs, root, proxy resources are named so"),
        (["name"], "proxy", r"schema.name = 'proxy' is taken"),
        (["name"], "jobs-", r"schema.name = 'jobs-' is not allowed: a lowercase letter"),
        (["name"], "a--b", r"schema.name = 'a--b' is not allowed: a lowercase letter"),
        (["name"], "root", r"schema.name = 'root' is taken"),
        (["columns"], [], r"schema.columns is not a list of columns; declare at least one"),
        (["owner"], "me", r"schema.owner is not a setting here; allowed: name, key, columns"),
        (["columns", 0, "maxLength"], 600, r"schema.columns\[0\].maxLength = 600 is too long for a key: at most 512"),
    ],
)
def test_a_mistake_is_named_by_its_path(path, value, message):
    with pytest.raises(SchemaError, match=message):
        parse_schema(with_change(path, value))


def test_a_schema_too_large_for_a_functions_environment_is_refused():
    wide = with_change(
        ["columns"], [{"name": f"column_{i:03d}", "type": "text", "aliases": [f"alias {i}"]} for i in range(60)]
    )
    wide["key"] = "column_000"
    with pytest.raises(SchemaError, match=f"at most {MAX_SCHEMA_JSON_BYTES}"):
        parse_schema(wide)


# --- format: how the stack's files are written ---------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ({}, Format()),
        ({"delimiter": "semicolon"}, Format(delimiter=";")),
        ({"delimiter": "TAB"}, Format(delimiter="\t")),
        ({"delimiter": "\t"}, Format(delimiter="\t")),
        ({"delimiter": "|"}, Format(delimiter="|")),
        ({"encoding": "Windows-1252"}, Format(encoding="cp1252")),
        ({"encoding": "ISO-8859-1", "delimiter": "pipe"}, Format(delimiter="|", encoding="latin-1")),
        ({"encoding": "utf_16"}, Format(encoding="utf-16")),
    ],
)
def test_a_format_is_read_by_name_and_kept_in_the_functions_json(declared, expected):
    schema = parse_schema({**PRODUCTS, "format": declared})
    assert schema.format == expected
    assert parse_schema(schema.to_json()) == schema
    # How a file is written is not what its rows are: chunks in flight keep their layout.
    assert schema.fingerprint == parse_schema(PRODUCTS).fingerprint


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        (
            {"delimiter": "x"},
            "schema.format.delimiter = 'x' is not allowed; use one of: comma, semicolon, tab, pipe (or leave it"
            " out: each file's delimiter is then detected from its header line)",
        ),
        (
            {"encoding": "ascii"},
            "schema.format.encoding = 'ascii' is not allowed; use one of: utf-8, cp1252, latin-1, utf-16",
        ),
        ({"quote": "'"}, "schema.format.quote is not a setting here; allowed: delimiter, encoding"),
        ("semicolon", "schema.format is not a mapping; declare delimiter and/or encoding"),
    ],
)
def test_a_format_mistake_names_its_path_and_what_is_allowed(declared, message):
    with pytest.raises(SchemaError) as refused:
        parse_schema({**PRODUCTS, "format": declared})
    assert str(refused.value) == message


def test_a_declaration_of_only_a_format_is_the_default_schema_read_that_way():
    # What the producer's messages tell a user of the default schema to set, as it is written.
    schema = parse_schema({"format": {"encoding": "cp1252"}})
    assert schema == replace(DEFAULT_SCHEMA, format=Format(encoding="cp1252"))
    assert parse_schema(schema.to_json()) == schema
