"""The worker on schemas other than the default: typed items, keys that are not emails, chunks of
another schema refused. The handlers run with the module's `schema` fixture (a test asks for another
with `@pytest.mark.parametrize("schema", [...], indirect=True)`)."""

import random

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.common.chunks import Chunk, Row, Source
from handlers.common.schema import DEFAULT_SCHEMA, META_ATTRIBUTES, SchemaError, parse_schema
from handlers.worker.admission import ChunkRefused, check_rows
from handlers.worker.writes import ItemLayout, Statements
from tests.handlers.conftest import REGION
from tests.handlers.schemas import DEVICES, DEVICES_HEADER, PRODUCTS, PRODUCTS_HEADER
from tests.handlers.test_worker import (
    forged,
    new_environment,
    record_writes,
    refusal_reasons,
    upload_dated,
)

pytestmark = pytest.mark.long(seconds=20)


@pytest.fixture
def schema(request):
    """Products, unless a test asks for another (`indirect=True`)."""
    return getattr(request, "param", PRODUCTS)


def stored_items(deployment) -> dict:
    """Every item of the table as DynamoDB's wire format gives it (its types visible), by key value."""
    # A client of its own: the resource's own (`meta.client`) hands back plain Python values.
    client = boto3.client("dynamodb", region_name=REGION)
    key = deployment.worker.SCHEMA.key_attribute
    items, page = [], {"LastEvaluatedKey": None}
    while "LastEvaluatedKey" in page:
        more = {"ExclusiveStartKey": page["LastEvaluatedKey"]} if page["LastEvaluatedKey"] else {}
        page = client.scan(TableName=deployment.users_table, **more)
        items += page["Items"]
    return {next(iter(item[key].values())): item for item in items}


def columns(item: dict) -> dict:
    """An item's attributes of the schema's columns (the pipeline's own left out)."""
    return {name: value for name, value in item.items() if name not in META_ATTRIBUTES}


# --- typed items ------------------------------------------------------------------------------------


def test_a_products_chunk_is_written_as_typed_items_its_empty_cells_absent(deployment):
    body = (
        PRODUCTS_HEADER
        + "A-1,Lamp,12.50,0012,Yes,2026-01-05,LIVE,2026-12-06T15:43:50+01:00\n"
        + "B-2,Chair,,,,,,\n"
        + "C-3,Desk,0,-3,off,2024-02-29,retired,2026-12-06T14:43:50.5Z\n"
    )
    job_id = deployment.upload("uploads/products.csv", body)

    assert deployment.drain() == []

    items = stored_items(deployment)
    assert columns(items["A-1"]) == {
        "sku": {"S": "A-1"},
        "title": {"S": "Lamp"},
        "price": {"N": "12.5"},
        "stock": {"N": "12"},
        "active": {"BOOL": True},
        "since": {"S": "2026-01-05"},
        "status": {"S": "live"},
        "at": {"S": "2026-12-06T14:43:50.000Z"},
    }
    assert columns(items["B-2"]) == {"sku": {"S": "B-2"}, "title": {"S": "Chair"}}, "no attribute for an empty cell"
    assert columns(items["C-3"]) == {
        "sku": {"S": "C-3"},
        "title": {"S": "Desk"},
        "price": {"N": "0"},
        "stock": {"N": "-3"},
        "active": {"BOOL": False},
        "since": {"S": "2024-02-29"},
        "status": {"S": "retired"},
        "at": {"S": "2026-12-06T14:43:50.500Z"},
    }
    assert (items["A-1"]["row"], items["C-3"]["row"], items["A-1"]["jobId"]) == ({"N": "1"}, {"N": "3"}, {"S": job_id})
    assert set(items["B-2"]) == {"sku", "title", *META_ATTRIBUTES}
    job = deployment.job(job_id)
    assert (job["status"], job["rowsWritten"], job["rowsSuperseded"]) == ("COMPLETE", 3, 0)


# Cells of each column, and what each is stored as (None: no attribute). A file's rows pick among them.
CELLS = {
    "price": [("12.50", {"N": "12.5"}), ("0", {"N": "0"}), ("1000", {"N": "1000"}), ("", None)],
    "stock": [("0012", {"N": "12"}), ("-3", {"N": "-3"}), ("", None)],
    "active": [("Yes", {"BOOL": True}), ("off", {"BOOL": False}), ("TRUE", {"BOOL": True}), ("", None)],
    "since": [("2026-01-05", {"S": "2026-01-05"}), ("", None)],
    "status": [("LIVE", {"S": "live"}), ("retired", {"S": "retired"}), ("", None)],
    "at": [("2026-12-06T15:43:50+01:00", {"S": "2026-12-06T14:43:50.000Z"}), ("", None)],
}


def product_files(rng: random.Random, files: int, rows: int, skus: int) -> tuple[list[str], dict]:
    """CSV files whose rows reuse a few skus, with repeats inside a file; and for each sku the columns
    of its item after every file is written in order: the latest file's last row of it."""
    bodies, expected = [], {}
    for f in range(files):
        lines = []
        for r in range(rows):
            sku = f"SKU-{rng.randrange(skus)}"
            picked = {name: rng.choice(cells) for name, cells in CELLS.items()}
            lines.append(",".join([sku, f"Title {f}-{r}", *(cell for cell, _ in picked.values())]))
            stored = {name: wire for name, (_, wire) in picked.items() if wire is not None}
            expected[sku] = {"sku": {"S": sku}, "title": {"S": f"Title {f}-{r}"}, **stored}
        bodies.append(PRODUCTS_HEADER + "\n".join(lines) + "\n")
    return bodies, expected


@pytest.mark.parametrize("seed", range(3))
def test_the_latest_upload_wins_on_products_under_shuffled_duplicated_deliveries(deployment, seed):
    rng = random.Random(seed)
    bodies, expected = product_files(rng, files=3, rows=12, skus=6)
    job_ids = [upload_dated(deployment, f"uploads/p-{i}.csv", body, 100 * i) for i, body in enumerate(bodies)]

    assert deployment.drain(rng=rng, duplicates=0.5) == []

    assert {sku: columns(item) for sku, item in stored_items(deployment).items()} == expected
    for job_id in job_ids:
        job = deployment.job(job_id)
        assert (job["status"], job["rowsWritten"] + job["rowsSuperseded"]) == ("COMPLETE", 12)


def test_an_update_that_empties_optional_cells_leaves_the_item_an_insert_makes(deployment, monkeypatch):
    # GIVEN a product written with every cell, and a newer upload of it whose optional cells are empty
    # but two, written as an UPDATE (its older item is stored), beside a new product of the same cells
    full = PRODUCTS_HEADER + "A-1,Lamp,12.50,3,yes,2026-01-05,live,2026-12-06T15:43:50Z\n"
    upload_dated(deployment, "uploads/old.csv", full, 0)
    assert deployment.drain() == []
    emptied = PRODUCTS_HEADER + "A-1,Lamp v2,,,false,,retired,\nZ-9,Lamp v2,,,false,,retired,\n"
    newer = upload_dated(deployment, "uploads/new.csv", emptied, 500)
    recorded = record_writes(deployment, monkeypatch)

    assert deployment.drain() == []

    # THEN the updated item holds exactly what the inserted one does: the emptied attributes removed
    items = stored_items(deployment)
    updated, inserted = columns(items["A-1"]), columns(items["Z-9"])
    assert {**updated, "sku": None} == {**inserted, "sku": None}
    assert updated == {
        "sku": {"S": "A-1"},
        "title": {"S": "Lamp v2"},
        "active": {"BOOL": False},
        "status": {"S": "retired"},
    }
    assert set(items["A-1"]) == set(items["Z-9"])
    assert items["A-1"]["jobId"] == {"S": newer}
    assert recorded.operations() == {"batch_get_item": 1, "batch_execute_statement": 1}


# --- a numeric key ------------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", [DEVICES], ids=["devices"], indirect=True)
def test_a_numeric_key_is_written_as_a_number_one_item_per_value(deployment):
    # 7 and 007 are one key: the latest row of it wins.
    body = DEVICES_HEADER + "7,Seven,1.10\n042,Forty-two,\n007,Seven again,2\n"
    job_id = deployment.upload("uploads/devices.csv", body)

    assert deployment.drain() == []

    items = stored_items(deployment)
    assert set(items) == {"7", "42"}
    assert columns(items["7"]) == {"id": {"N": "7"}, "label": {"S": "Seven again"}, "firmware": {"N": "2"}}
    assert columns(items["42"]) == {"id": {"N": "42"}, "label": {"S": "Forty-two"}}
    job = deployment.job(job_id)
    assert (job["status"], job["rowsWritten"], job["rowsSuperseded"]) == ("COMPLETE", 2, 1)


@pytest.mark.parametrize("schema", [DEVICES], ids=["devices"], indirect=True)
def test_hints_of_a_numeric_key_supersede_an_older_upload_without_a_write(deployment, monkeypatch):
    # GIVEN an older upload's chunk, delivered after a newer upload of the same ids was written
    older = upload_dated(deployment, "uploads/old.csv", DEVICES_HEADER + "7,Old,1\n42,Old,\n1000,Old,3.5\n", 0)
    old_messages = deployment.receive_all()
    upload_dated(deployment, "uploads/new.csv", DEVICES_HEADER + "7,New,\n042,New,2\n1000,New,3.50\n", 500)
    assert deployment.drain() == []
    new_environment(deployment)
    recorded = record_writes(deployment, monkeypatch)

    # WHEN it is delivered
    assert deployment.deliver(old_messages) == []

    # THEN the hints (read by number) find every id stored newer: superseded, no statement sent
    assert recorded.operations() == {"batch_get_item": 1}
    assert (deployment.job(older)["rowsWritten"], deployment.job(older)["rowsSuperseded"]) == (0, 3)
    assert {key: item["label"]["S"] for key, item in stored_items(deployment).items()} == {
        "7": "New",
        "42": "New",
        "1000": "New",
    }


# --- refused: another schema's chunks, rows not in its normal forms ----------------------------------

ONE_PRODUCT = PRODUCTS_HEADER + "A-1,Lamp,12.50,3,yes,2026-01-05,live,2026-12-06T15:43:50Z\n"


def set_cell(column: str, value):
    """A change of the chunk's first row: the value of `column` set to `value` (a row is its number, then
    its values in the schema's order of columns)."""
    position = 1 + [c.name for c in PRODUCTS.columns].index(column)
    return lambda body: body["rows"][0].__setitem__(position, value)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda body: body.update(schema=DEFAULT_SCHEMA.fingerprint),
            f"was made with schema {DEFAULT_SCHEMA.fingerprint}; this worker's schema is {PRODUCTS.fingerprint}",
        ),
        (lambda body: body["rows"][0].append("extra"), "row 1 has 9 values; the schema has 8 columns"),
        (set_cell("price", "12.50"), "row 1: price is not in normalised form"),
        (set_cell("price", 12.5), None),  # a JSON number other than a whole one: not a chunk at all
        (set_cell("price", "-1"), "row 1: price is below its minimum, 0"),
        (set_cell("stock", "3"), "row 1: stock is not in normalised form"),
        (set_cell("active", 1), "row 1: active is not in normalised form"),
        (set_cell("active", "true"), "row 1: active is not in normalised form"),
        (set_cell("status", "LIVE"), "row 1: status is not in normalised form"),
        (set_cell("status", "gone"), "row 1: status is not one of its 3 values"),
        (set_cell("since", "2026-02-30"), "row 1: since is not a date"),
        (set_cell("at", "2026-12-06T15:43:50Z"), "row 1: at is not in normalised form"),
        (set_cell("sku", None), "row 1: sku is empty"),
        (set_cell("title", "  Lamp  "), "row 1: title is not in normalised form"),
    ],
)
def test_a_products_chunk_of_another_schema_or_with_a_value_not_in_normal_form_is_refused_before_any_write(
    deployment, log_lines, change, reason
):
    job_id = deployment.upload("uploads/a.csv", ONE_PRODUCT)
    [message] = deployment.receive_all()
    logs = log_lines(deployment.worker)

    assert deployment.deliver([forged(deployment, message, change)]) == ["forged"]

    assert stored_items(deployment) == {}, "nothing of a refused chunk is written"
    assert deployment.job(job_id)["chunksDone"] == 0, "nor counted"
    if reason is None:
        assert '"malformed message"' in logs.getvalue()
    else:
        [refused] = refusal_reasons(logs)
        assert reason in refused
        assert not {"12.50", "Lamp", "LIVE", "gone", "extra", "2026-02-30", "A-1"} & set(refused.split())
    assert deployment.deliver([message]) == []  # the producer's chunk still goes through
    assert columns(stored_items(deployment)["A-1"])["price"] == {"N": "12.5"}


# --- statements ----------------------------------------------------------------------------------------

TABLE = "csv-ingest-test-users"
# The default schema's statements, as the worker sent them before schemas: kept byte for byte.
META_SETS = (
    'SET "rowVersion" = ? SET "uploadedAt" = ? SET "updatedAt" = ? SET "jobId" = ? SET "sourceBucket" = ?'
    ' SET "sourceKey" = ? SET "sourceVersionId" = ? SET "row" = ?'
)
INSERT = (
    f"INSERT INTO \"{TABLE}\" VALUE {{'email': ?, 'name': ?, 'rowVersion': ?, 'uploadedAt': ?, 'updatedAt': ?,"
    " 'jobId': ?, 'sourceBucket': ?, 'sourceKey': ?, 'sourceVersionId': ?, 'row': ?"
)
LATEST = 'WHERE "email" = ? AND ("rowVersion" <= ? OR "rowVersion" > ?)'
DEFAULT_STATEMENTS = {
    "insert": INSERT + "}",
    "insert with phone": INSERT + ", 'phone': ?}",
    "update": f'UPDATE "{TABLE}" SET "name" = ? {META_SETS} REMOVE "phone" {LATEST}',
    "update with phone": f'UPDATE "{TABLE}" SET "name" = ? {META_SETS} SET "phone" = ? {LATEST}',
}


def test_the_default_schemas_statements_are_the_statements_of_before():
    statements = Statements(TABLE, ItemLayout(DEFAULT_SCHEMA))
    assert {
        "insert": statements.insert((False,)),
        "insert with phone": statements.insert((True,)),
        "update": statements.update((False,)),
        "update with phone": statements.update((True,)),
    } == DEFAULT_STATEMENTS


def wide_schema(columns: int, name_length: int):
    """A schema of `columns` columns, the first its key, every other optional, named `name_length` long."""
    names = [f"c{i:02d}".ljust(name_length, "x") for i in range(columns)]
    return parse_schema(
        {"name": "wide", "key": names[0], "columns": [{"name": name, "type": "integer"} for name in names]}
    )


def test_a_wide_schemas_statements_are_built_for_the_rows_met_each_within_dynamodbs_length():
    # 19 optional columns: 2^19 sets of present attributes, of which a worker builds those its rows have.
    schema = wide_schema(20, 3)
    statements = Statements("wide", ItemLayout(schema))
    assert (statements.insert.cache_info().currsize, statements.update.cache_info().currsize) == (0, 0)
    present = (True, False) * 9 + (True,)

    insert, update = statements.insert(present), statements.update(present)
    statements.insert(present)

    assert statements.insert.cache_info().currsize == 1 and statements.insert.cache_info().hits == 1
    kept = [cell.attribute for cell, has in zip(ItemLayout(schema).optional, present, strict=True) if has]
    assert all(f"'{name}': ?" in insert for name in kept) and insert.count("?") == 1 + len(kept) + 8
    assert update.count("REMOVE") == 9 and update.count('SET "c') == 10
    # The most columns of the longest names a declaration the functions take holds (2048 bytes of JSON):
    # its longest statement, on a table of the longest name, is within BatchStatementRequest's 8192 characters.
    widest = next(schema for schema in map(declared_wide, range(100, 0, -1)) if schema is not None)
    longest = Statements("t" * 255, ItemLayout(widest)).update((True,) * (len(widest.columns) - 1))
    assert len(widest.columns) >= 20 and len(longest) <= 8192


def declared_wide(columns: int):
    """`wide_schema(columns, 64)`, or None when the functions would not take its declaration."""
    try:
        return wide_schema(columns, 64)
    except SchemaError:
        return None


# --- admission checks a chunk by column, and refuses exactly what Column.is_normal refuses ----------------

# Values a chunk may carry for each column: normal forms (and None where the column is optional), then
# values that are not (padded, of another case or JSON type, out of range, empty where required).
PALETTES = {
    PRODUCTS: {
        "sku": (["A-1", "b 2"], [" A-1", "", None, 5]),
        "title": (["Lamp", "x" * 256], ["Lamp ", "", None, "x" * 257]),
        "price": (["12.5", "0", "0.5", None], ["12.50", ".5", "-1", "1e3", 12]),
        "stock": ([3, -3, 0, None], ["3", True, 10**40]),
        "active": ([True, False, None], [1, 0, "true"]),
        "since": (["2026-01-05", None], ["2026-1-5", "2026-02-30", ""]),
        "status": (["live", "retired", None], ["LIVE", "gone"]),
        "at": (["2026-12-06T14:43:50.000Z", None], ["2026-12-06T14:43:50Z", "2026-12-06T15:43:50.000+01:00"]),
    },
    DEFAULT_SCHEMA: {
        "name": (["Ann", "Zoë Ñ"], [" Ann", "", None]),
        "mail": (["a@example.com", "b@example.co.uk"], ["A@example.com", "not-an-email", "", None]),
        "phone": (["+4915112345678", "5551234567", None], ["(555) 123-4567", "12345", ""]),
    },
}


@st.composite
def palette_chunks(draw, schema):
    """A chunk of 1 to 6 rows of normal values from the schema's palette, in half of them one to three
    cells replaced by values that are not."""
    palette = [PALETTES[schema][column.name] for column in schema.columns]
    rows = draw(st.lists(st.tuples(*(st.sampled_from(normal) for normal, _ in palette)), min_size=1, max_size=6))
    rows = [list(values) for values in rows]
    if draw(st.booleans()):
        for _ in range(draw(st.integers(1, 3))):
            row, column = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, len(palette) - 1))
            rows[row][column] = draw(st.sampled_from(palette[column][1]))
    numbered = tuple(Row(number, tuple(values)) for number, values in enumerate(rows, start=1))
    return Chunk("j" * 32, 0, 1, "t", Source("b", "k", "v"), None, schema.fingerprint, numbered)


@pytest.mark.parametrize("declared", [PRODUCTS, DEFAULT_SCHEMA], ids=["products", "default"])
def test_a_chunk_is_refused_exactly_when_one_of_its_values_is_not_normal(declared):
    seen = {"refused": 0, "admitted": 0}

    @settings(derandomize=True, deadline=None, database=None, max_examples=300)
    @given(palette_chunks(declared))
    def refused_exactly_when_a_value_is_not_normal(chunk):
        broken = [
            (row.row, column.name)
            for row in chunk.rows
            for column, value in zip(declared.columns, row.values, strict=True)
            if not column.is_normal(value)
        ]
        if broken:
            with pytest.raises(ChunkRefused) as refused:
                check_rows(chunk, declared)
            first_row = broken[0][0]
            assert f"row {first_row}: " in str(refused.value)
            seen["refused"] += 1
        else:
            check_rows(chunk, declared)
            seen["admitted"] += 1

    refused_exactly_when_a_value_is_not_normal()
    assert seen["refused"] > 100 and seen["admitted"] > 100, seen
