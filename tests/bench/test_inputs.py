"""The benchmarks' inputs: seeded files the producer reads as intended, on the default and the wide schema.

A benchmark's figure means something only if its input is what it says: every row valid (the
producer_cpu and worker benchmarks stop on a row rejected), the same bytes every run, and the wide
schema a realistic mix that fits the dev stack (its queue's messages, the functions' environment).
"""

from __future__ import annotations

import hashlib
import io

import pytest

from bench.inputs import USERS, WIDE, WIDE_SCHEMA_DECLARATION, csv_bytes, rows
from bench.producer_cpu import producer_settings, stack_config
from handlers.common.schema import DEFAULT_SCHEMA, TYPES
from handlers.producer.check import FileChecked, check_upload

pytestmark = pytest.mark.long(seconds=30)

MAX_UPLOAD_BYTES = 64 * 1024 * 1024


def checked(data: bytes, dataset_schema) -> FileChecked:
    """What the producer's own code (`ingest upload --check`'s) makes of the file."""
    answer = check_upload(
        io.BytesIO(data),
        len(data),
        dataset_schema,
        MAX_UPLOAD_BYTES,
        name="bench.csv",
        max_decompressed_bytes=MAX_UPLOAD_BYTES,
    )
    assert isinstance(answer, FileChecked), answer
    return answer


def test_the_default_inputs_are_the_bytes_they_were_before_the_wide_schema() -> None:
    # Every earlier figure was measured on these bytes: a change of the generator would move them unseen.
    assert hashlib.sha256(csv_bytes(5000)).hexdigest() == (
        "e1223d351ef2831117085e6ffa3fe178a791a8c02ee20fbdb263f5f209f36bb6"
    )
    assert hashlib.sha256(csv_bytes(3000, distinct=700, first=123, seed=5)).hexdigest() == (
        "ef2b6e3eee7c679de3df98480ec26f446ed2cc10f4f6c6722ba42c36381177d4"
    )
    assert USERS.schema == DEFAULT_SCHEMA
    assert list(USERS.rows(50, first=7)) == list(rows(50, first=7))


def test_the_wide_schema_has_20_columns_of_every_type_optional_ones_and_aliases() -> None:
    schema = WIDE.schema

    assert len(schema.columns) == 20
    assert {column.type.name for column in schema.columns} == set(TYPES)
    assert schema.key_column.type.name == "text"
    assert sum(not column.required for column in schema.columns) >= 5
    assert sum(bool(column.aliases) for column in schema.columns) >= 3


def test_every_wide_row_is_valid_and_every_column_named_by_the_header() -> None:
    count = 3000

    answer = checked(WIDE.csv_bytes(count), WIDE.schema)

    assert (answer.rows, answer.valid, answer.rejected, answer.blank_lines) == (count, count, 0, 0), answer.reasons
    assert answer.ignored == ()
    assert all(match.position is not None for match in answer.columns)
    # Some header cells are aliases, as a real export spells them.
    assert any(match.spelling != match.column for match in answer.columns)


def test_the_wide_rows_need_normalising_and_leave_optional_cells_empty() -> None:
    # A file already in normal form, every cell present, would measure a producer with less to do.
    schema = WIDE.schema
    lines = list(WIDE.rows(2000))
    cells = [line.split(",") for line in lines if '"' not in line]  # unquoted lines: cells split plainly

    columns = {column.name: index for index, column in enumerate(schema.columns)}
    empties = {name for name, index in columns.items() for row in cells if row[index] == ""}
    changed = {
        name
        for name, index in columns.items()
        for row in cells[:200]
        if row[index] and schema.columns[index].normalize(row[index]) != row[index]
    }

    assert empties and not empties & {column.name for column in schema.columns if column.required}
    assert {"email", "active", "last_login", "monthly_spend"} <= changed
    assert any('"' in line for line in lines)  # quoted cells too


def test_wide_files_numbered_from_elsewhere_share_no_key_and_are_the_same_bytes_each_time() -> None:
    key = WIDE.schema.key_index

    here, again, elsewhere = list(WIDE.rows(100)), list(WIDE.rows(100)), list(WIDE.rows(100, first=100))

    assert here == again
    assert not {line.split(",")[key] for line in here} & {line.split(",")[key] for line in elsewhere}
    assert len({line.split(",")[key] for line in here}) == 100


def test_the_dev_stack_takes_the_wide_schema_as_its_setting() -> None:
    # The worker benchmark deploys dev with `schema` set to it: the program's own checks (the schema's
    # JSON within the functions' environment, its largest row within a message) must accept it.
    config = stack_config("dev", {"schema": WIDE_SCHEMA_DECLARATION})

    assert config.schema == WIDE.schema
    assert producer_settings(config).schema == WIDE.schema
    assert producer_settings(stack_config("dev")).schema == DEFAULT_SCHEMA
