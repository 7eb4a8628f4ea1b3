"""The producer on a schema other than the default: a product catalogue keyed by `sku` (no email),
with typed columns. The handlers run with this module's `schema` fixture."""

import csv
import importlib
import io
import json

import pytest

from handlers.common.chunks import decode
from handlers.common.schema import MAX_TEXT_LENGTH, SCHEMA_VARIABLE, Schema, parse_schema
from handlers.producer.packing import row_budget_problem
from tests.handlers.harness import FakeContext
from tests.handlers.producer_schemas import PRODUCTS

pytestmark = pytest.mark.long(seconds=10)


@pytest.fixture
def schema():
    return PRODUCTS


def report(deployment, job_id):
    """The job's rejects report: its heading, then the rows of its parts in order."""
    parts = deployment.s3.list_objects_v2(Bucket=deployment.bucket, Prefix=f"reports/{job_id}/")["Contents"]
    lines = []
    for key in sorted(part["Key"] for part in parts):
        body = deployment.s3.get_object(Bucket=deployment.bucket, Key=key)["Body"].read().decode()
        heading, *rows = csv.reader(io.StringIO(body))
        lines += [heading] * (not lines) + rows
    return lines


def test_chunks_carry_typed_values_and_the_schemas_fingerprint(deployment):
    body = (
        "Item-Code,Title,Price,Qty,Active,Since,Status,At,notes\n"
        " A-1 ,Lamp,012.50,+7,Yes,2026-01-02, LIVE ,2026-12-06T15:43:50+01:00,fragile\n"
        "B-2,Desk,3,,no,,,,\n"
    )
    job_id = deployment.upload("uploads/products.csv", body)
    [message] = deployment.receive_all()
    chunk = decode(message["Body"])
    assert chunk.schema == PRODUCTS.fingerprint
    assert [(row.row, row.values) for row in chunk.rows] == [
        (1, ("A-1", "Lamp", "12.5", 7, True, "2026-01-02", "live", "2026-12-06T14:43:50.000Z")),
        (2, ("B-2", "Desk", "3", None, False, None, None, None)),
    ]
    assert message["Body"].endswith(
        '"rows":[[1,"A-1","Lamp","12.5",7,true,"2026-01-02","live","2026-12-06T14:43:50.000Z"],'
        '[2,"B-2","Desk","3",null,false,null,null,null]]}'
    )
    job = deployment.job(job_id)
    assert (job["rowsValid"], job["extraColumns"]) == (2, ["notes"])


def test_the_rejects_report_has_the_schemas_columns_as_the_file_spells_them(deployment):
    body = (
        "Title,notes,SKU,Price,Qty,Active\n"
        "Lamp,secret note,A-1,-1,3,yes\n"  # a price below its minimum
        '=HYPERLINK("x"),other note,B-2,2,three,no\n'  # a stock that is no whole number
        "Chair,,C-3,4,5,true\n"  # valid
    )
    job_id = deployment.upload("uploads/rejects.csv", body)
    heading, *rows = report(deployment, job_id)
    assert heading == ["row", "line", "reason", "SKU", "Title", "Price", "Qty", "Active"]
    assert rows == [
        # A cell a spreadsheet would read as a formula is escaped, a negative number too, as ever.
        ["1", "2", "price is below its minimum, 0", "A-1", "Lamp", "'-1", "3", "yes"],
        [
            "2",
            "3",
            "stock is not a whole number (digits, an optional sign)",
            "B-2",
            '\'=HYPERLINK("x")',
            "2",
            "three",
            "no",
        ],
    ]
    assert "note" not in json.dumps(rows), "an ignored column is never copied"
    assert deployment.job(job_id)["rowsValid"] == 1


def test_a_file_without_the_key_column_fails_naming_the_column_and_its_spellings(deployment):
    job_id = deployment.upload("uploads/no-key.csv", "title,price\nLamp,3\n")
    job = deployment.job(job_id)
    assert (job["status"], job["error"]) == (
        "FAILED",
        "incomplete header: missing sku column(s); none of the first row's 2 cells is named 'sku', 'product id',"
        " 'item_code'; the file was read as comma-delimited, the only one of comma, semicolon, tab, pipe that splits"
        " its header line",
    )
    assert deployment.receive_all() == []


def test_a_producer_whose_schema_cannot_fit_its_queues_messages_stops_at_its_start(deployment, monkeypatch):
    wide = {
        "name": "notes",
        "key": "id",
        "columns": [{"name": "id", "type": "integer"}, {"name": "note", "type": "text", "maxLength": 4096}],
    }
    monkeypatch.setenv(SCHEMA_VARIABLE, parse_schema(wide).to_json())
    monkeypatch.setenv("MAX_MESSAGE_BYTES", "65536")
    with pytest.raises(RuntimeError, match="the stack's schema does not fit its queue: a row of this schema"):
        importlib.reload(deployment.producer)


def test_an_upload_whose_escaped_key_leaves_no_room_for_a_row_fails_its_job_naming_the_key(deployment, monkeypatch):
    """The plan checks an upload of an ordinary key (`row_budget_problem`); a key of characters JSON
    escapes is longer in every chunk. Its job fails before a row is read, never the producer."""

    def schema(length: int) -> Schema:
        columns = [{"name": "id", "type": "integer"}, {"name": "note", "type": "text", "maxLength": length}]
        return parse_schema({"name": "notes", "key": "id", "columns": columns})

    longest = max(n for n in range(1, MAX_TEXT_LENGTH + 1, 8) if row_budget_problem(schema(n), 65536) is None)
    monkeypatch.setenv(SCHEMA_VARIABLE, schema(longest).to_json())
    monkeypatch.setenv("MAX_MESSAGE_BYTES", "65536")
    deployment.producer = importlib.reload(deployment.producer)
    key = "uploads/" + "é" * 500 + ".csv"  # 1,012 bytes of UTF-8, 3,012 in a chunk (\u00e9)
    job = deployment.job(deployment.upload(key, "id,note\n1,x\n"))
    assert job["status"] == "FAILED"
    assert job["error"].startswith("the object's key is 1012 bytes long and takes 3014 in each chunk, which leaves")
    assert deployment.receive_all() == []


def test_a_products_file_read_over_many_invocations_gives_the_chunks_of_one(deployment):
    """Each invocation resumes from the header the job record keeps (positions, absent columns)."""
    body = "notes,Price,Product ID,Title,Active\n" + "".join(
        f"n{i},{i}.5,P-{i},Item {i},{'yes' if i % 2 else 'no'}\n" if i % 9 else f"n{i},-1,P-{i},Item {i},\n"
        for i in range(200)
    )
    one = deployment.upload("uploads/one.csv", body)
    single = sorted((decode(m["Body"]) for m in deployment.receive_all()), key=lambda c: c.chunk)
    many = deployment.upload(
        "uploads/many.csv", body, contexts=lambda: FakeContext(remaining_ms=100_000, step_ms=3_000)
    )
    chained = sorted((decode(m["Body"]) for m in deployment.receive_all()), key=lambda c: c.chunk)
    assert deployment.job(many)["checkpoint"]["segment"] > 3, "too few invocations"
    assert deployment.job(many)["checkpoint"]["header"]["positions"] == [2, 3, 1, None, 4, None, None, None]
    assert [(c.chunk, c.rows) for c in chained] == [(c.chunk, c.rows) for c in single]
    assert single[0].rows[0].values == ("P-1", "Item 1", "1.5", None, True, None, None, None)
    assert report(deployment, many) == report(deployment, one)
