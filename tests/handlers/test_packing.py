"""Packing rows into chunks: deterministic boundaries, within SQS size limits."""

import json
import random

import pytest

from handlers.common.chunks import MAC_ATTRIBUTE_BYTES, ROW_SPACE, Chunk, Row, Source
from handlers.common.schema import DEFAULT_SCHEMA, MAX_NUMBER_DIGITS, TYPES, Column, Value, parse_schema
from handlers.producer.packing import (
    MAX_BATCH_ENTRIES,
    Budgets,
    ChunkPacker,
    RowEncoder,
    encode_row,
    encoded_chunks,
    max_row_bytes,
    max_value_bytes,
    row_budget_problem,
    row_bytes,
)
from tests.handlers.producer_schemas import PRODUCTS

DEFAULT = Budgets.for_queue(1024 * 1024)
# The largest row of the default schema (name, mail, phone): what the packer keeps room for.
MAX_ROW = max_row_bytes(DEFAULT_SCHEMA)


def make_chunk(number, rows):
    return Chunk("job", number, 1_764_324_000_000, "0" * 64, Source("b", "uploads/k.csv", "v"), None, "0" * 16, rows)


def user(number, email, name, phone):
    """A row of the default schema, whose columns are name, mail, phone."""
    return Row(number, (name, email, phone))


def rows(count, seed=1):
    rng = random.Random(seed)
    return [user(i, f"user{i}@example.com", "n" * rng.randint(1, 256), None) for i in range(1, count + 1)]


def pack(all_rows, rows_per_chunk, start=0, budgets=DEFAULT):
    packer = ChunkPacker(make_chunk, start, rows_per_chunk, budgets.chunk_bytes, max_row_bytes=MAX_ROW)
    chunks = [c for row in all_rows if (c := packer.add(row))]
    return chunks + ([last] if (last := packer.flush()) else [])


def test_chunks_hold_at_most_the_configured_rows_in_order():
    chunks = pack(rows(10), 3)
    assert [len(c.rows) for c in chunks] == [3, 3, 3, 1]
    assert [c.chunk for c in chunks] == [0, 1, 2, 3]
    assert [r.row for c in chunks for r in c.rows] == list(range(1, 11))


@pytest.mark.parametrize("max_message_bytes", [65_536, 262_144, 1_048_576])
@pytest.mark.parametrize("name", ["n" * 256, '"' * 256, "\x01" * 256, "😀" * 256])
def test_chunks_stay_under_the_configured_message_size_whatever_the_rows(name, max_message_bytes):
    budgets = Budgets.for_queue(max_message_bytes)
    big = [user(i, f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 50}.com", name, "+123456789012345") for i in range(1, 400)]
    chunks = pack(big, 1000, budgets=budgets)
    for chunk in chunks:
        assert len(chunk.encode().encode()) <= budgets.chunk_bytes <= max_message_bytes
    # A full batch of the largest chunks fits one SendMessageBatch call, and the queue.
    assert MAX_BATCH_ENTRIES * budgets.chunk_bytes <= budgets.batch_bytes <= min(max_message_bytes, 1024 * 1024)
    assert sum(len(c.rows) for c in chunks) == len(big)
    assert len(chunks) > 1, "rows this large must spread over several chunks"


@pytest.mark.parametrize("max_message_bytes", [65_536, 262_144, 1_048_576])
def test_a_chunk_and_its_mac_attribute_fit_the_queue_and_ten_of_them_one_send(max_message_bytes):
    # SQS counts a message attribute's name, type and value towards the message's size.
    budgets = Budgets.for_queue(max_message_bytes)
    largest_message = budgets.chunk_bytes + MAC_ATTRIBUTE_BYTES
    assert largest_message <= max_message_bytes
    assert MAX_BATCH_ENTRIES * largest_message <= budgets.batch_bytes


def test_packing_resumed_at_any_empty_point_gives_the_same_chunks():
    all_rows = rows(50, seed=7)
    whole = pack(all_rows, 4)
    packer = ChunkPacker(make_chunk, 0, 4, DEFAULT.chunk_bytes, max_row_bytes=MAX_ROW)
    for i, row in enumerate(all_rows):
        if packer.add(row) is not None or packer.empty:
            resumed = pack(all_rows[i + 1 :], 4, start=packer.next_chunk)
            assert whole[packer.next_chunk :] == resumed, f"resuming after row {row.row}"


def test_a_queue_limit_too_small_for_one_row_is_refused():
    with pytest.raises(ValueError, match="leaves no room for a row"):
        ChunkPacker(make_chunk, 0, 10, Budgets.for_queue(16_384).chunk_bytes, max_row_bytes=MAX_ROW)


TRICKY_CELLS = [
    "Ada",
    "",
    " spaced ",
    'say "hi"',
    "back\\slash",
    "tab\there",
    "\x7f",
    "\x00",
    "é",
    "😀",
    "\u2028",
    "a" * 256,
]


@pytest.mark.parametrize("name", TRICKY_CELLS)
@pytest.mark.parametrize("phone", [None, "+441234567890", 'odd"phone'])
def test_row_bytes_is_the_length_of_the_rows_json(name, phone):
    row = user(1234567, "ada.lovelace+tag@example.co.uk", name, phone)

    assert row_bytes(row) == len(json.dumps(row.to_json(), separators=(",", ":")))


def tricky_rows(count, seed):
    rng = random.Random(seed)
    names = [*TRICKY_CELLS, "😀" * 256]  # the longest JSON a valid row's name gets
    phones = [None, "+441234567890", 'odd"phone']
    return [user(i, rng.choice(TRICKY_CELLS), rng.choice(names), rng.choice(phones)) for i in range(1, count + 1)]


@pytest.mark.parametrize("max_message_bytes", [65_536, 262_144, 1_048_576])
@pytest.mark.parametrize("rows_per_chunk", [1, 7, 200])
@pytest.mark.parametrize("start", [0, 99_999_999])
def test_encoded_rows_pack_into_the_very_chunks_rows_do(max_message_bytes, rows_per_chunk, start):
    # The producer packs rows encoded once (encode_row) into bodies joined in their envelope: the same
    # boundaries and the same bytes as packing the Rows into Chunks and encoding those.
    budget = Budgets.for_queue(max_message_bytes).chunk_bytes
    all_rows = tricky_rows(600, seed=rows_per_chunk)
    chunks = pack(all_rows, rows_per_chunk, start=start, budgets=Budgets.for_queue(max_message_bytes))
    packer = ChunkPacker(encoded_chunks(make_chunk), start, rows_per_chunk, budget, len, max_row_bytes=MAX_ROW)
    encoded = [c for r in all_rows if (c := packer.add(encode_row(r.row, r.values)))]
    encoded += [last] if (last := packer.flush()) else []
    assert [(c.chunk, c.encode()) for c in encoded] == [(c.chunk, c.encode()) for c in chunks]
    assert len(chunks) > 1


@pytest.mark.parametrize("max_message_bytes", [65_536, 1_048_576])
@pytest.mark.parametrize("rows_per_chunk", [1, 3, 200])
@pytest.mark.parametrize("step", [1, 2, 5, 64, 1000])
def test_adding_rows_many_at_a_time_closes_chunks_where_one_at_a_time_does(max_message_bytes, rows_per_chunk, step):
    budget = Budgets.for_queue(max_message_bytes).chunk_bytes
    encoded = [encode_row(r.row, r.values) for r in tricky_rows(700, seed=step)]
    one = ChunkPacker(encoded_chunks(make_chunk), 0, rows_per_chunk, budget, len, max_row_bytes=MAX_ROW)
    expected = [(i, c.encode()) for i, row in enumerate(encoded) if (c := one.add(row))]
    many = ChunkPacker(encoded_chunks(make_chunk), 0, rows_per_chunk, budget, len, max_row_bytes=MAX_ROW)
    closed, taken = [], 0
    while taken < len(encoded):
        taken, chunk = many.add_many(encoded, taken, min(len(encoded), taken + step))
        if chunk:
            closed.append((taken - 1, chunk.encode()))  # the index of the row that closed it
    assert closed == expected
    assert (many.empty, many.next_chunk) == (one.empty, one.next_chunk)
    assert (last := many.flush()) is None or last.encode() == one.flush().encode()


@pytest.mark.parametrize("phones", [[None] * 4, ["+441234567890", None, 'odd"phone', "0123456"], ["1"] * 4])
@pytest.mark.parametrize("names", [["Ada"] * 4, ["Ada", 'say "hi"', "é", "tab\there"], ["\x7f", "😀", "", "a\\b"]])
def test_rows_encoded_by_column_are_each_rows_json(names, phones):
    emails = ["a@b.co", "c@d.co", "Ünï@x.co", "e@f.co"]
    rows = [
        user(1000 + i, email, name, phone)
        for i, (email, name, phone) in enumerate(zip(emails, names, phones, strict=True))
    ]
    encoded = RowEncoder(DEFAULT_SCHEMA).rows(1000, [names, emails, phones])
    assert encoded == [json.dumps(r.to_json(), separators=(",", ":")) for r in rows]


# --- rows of other schemas ------------------------------------------------------------------------


def test_products_rows_are_encoded_as_typed_json_arrays_exactly_as_a_chunk_writes_them():
    columns = [
        ["A-1", "b\u00e9", 'q"2'],
        ["Lamp", "Desk \U0001f600", "Chair"],
        ["12.5", "0", "0.001"],
        [7, -3, None],
        [True, False, None],
        ["2026-01-02", None, "1999-12-31"],
        ["live", "draft", None],
        ["2026-12-06T14:43:50.000Z", None, None],
    ]
    encoded = RowEncoder(PRODUCTS).rows(41, columns)
    rows = [Row(41 + i, values) for i, values in enumerate(zip(*columns, strict=True))]
    assert encoded == [json.dumps(row.to_json(), separators=(",", ":")) for row in rows]
    assert [encode_row(row.row, row.values) for row in rows] == encoded
    first = json.loads(encoded[0])
    assert first == [41, "A-1", "Lamp", "12.5", 7, True, "2026-01-02", "live", "2026-12-06T14:43:50.000Z"]
    assert [type(value) for value in first[3:6]] == [str, int, bool], "decimals exact as text, integers, booleans"
    assert json.loads(encoded[2])[4:6] == [None, None]


def largest_value(column: Column) -> Value:
    """The valid value of a column that JSON writes longest, from its type's rules."""
    largest: dict[str, Value] = {
        "text": "\U0001f600" * column.max_length,
        "email": f"{'a' * 64}@{'b' * 63}.{'c' * 63}.{'d' * 61}",
        "phone": "+" + "9" * 15,
        "integer": -int("9" * MAX_NUMBER_DIGITS),
        "decimal": "-0." + "0" * 129 + "9" * MAX_NUMBER_DIGITS,
        "boolean": False,
        "date": "2026-12-06",
        "datetime": "2026-12-06T15:43:50.000Z",
        "enum": max(column.values, key=lambda value: len(json.dumps(value))) if column.values else None,
    }
    value = largest[column.type.name]
    assert column.is_normal(value), f"{column.type.name}: {value!r} is not a valid value"
    return value


EVERY_TYPE = parse_schema(
    {
        "name": "every",
        "key": "k",
        "columns": [
            {"name": "k", "type": "text", "maxLength": 512},
            *({"name": f"c_{kind}", "type": kind} for kind in TYPES if kind not in ("text", "enum")),
            {"name": "c_enum", "type": "enum", "values": ["a", "\U0001f600\u2028" * 20, "b" * 100]},
        ],
    }
)


def test_every_types_largest_value_is_within_what_the_packer_keeps_room_for():
    assert {column.type.name for column in EVERY_TYPE.columns} == set(TYPES)
    values = tuple(largest_value(column) for column in EVERY_TYPE.columns)
    for column, value in zip(EVERY_TYPE.columns, values, strict=True):
        assert len(json.dumps(value)) == max_value_bytes(column), f"{column.type.name}: not its largest"
    largest = Row(ROW_SPACE - 1, values)
    assert row_bytes(largest) + 1 == max_row_bytes(EVERY_TYPE), "the row and its separating comma"


def test_a_schema_whose_largest_row_cannot_fit_a_chunk_is_refused_by_its_numbers():
    wide = parse_schema(
        {
            "name": "notes",
            "key": "id",
            "columns": [
                {"name": "id", "type": "integer"},
                *({"name": f"note{i}", "type": "text", "maxLength": 4096} for i in range(3)),
            ],
        }
    )
    assert row_budget_problem(DEFAULT_SCHEMA, 65_536) is None, "the default schema fits the smallest queue"
    # A chunk of 64 KiB messages keeps 4,011 bytes for rows besides the envelope of an upload with
    # a 1,024-byte key and version id: a products row takes up to 4,128.
    assert row_budget_problem(PRODUCTS, 65_536) == (
        "a row of this schema encodes to up to 4128 bytes, and a chunk of a queue whose messages hold 65536 bytes"
        " has room for 4011: raise maxMessageBytes, or lower the text columns' maxLength"
    )
    assert row_budget_problem(PRODUCTS, 131_072) is None
    # A comma, `[]`, a 10-digit row number, then each value after a comma: a signed 38-digit integer
    # and three texts of 4,096 characters each written as two \uXXXX escapes, quoted.
    largest = 1 + 2 + 10 + (1 + 39) + 3 * (1 + 12 * 4096 + 2)
    assert max_row_bytes(wide) == largest
    assert row_budget_problem(wide, 1024 * 1024).startswith(f"a row of this schema encodes to up to {largest} bytes")
    with pytest.raises(ValueError, match="leaves no room for a row"):
        ChunkPacker(make_chunk, 0, 10, DEFAULT.chunk_bytes, max_row_bytes=max_row_bytes(wide))
