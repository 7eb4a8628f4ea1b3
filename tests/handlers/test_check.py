"""The local check of a file (`handlers/producer/check.py`, behind `ingest upload --check FILE`): the
producer's answer without AWS. Each file is checked, then ingested by the producer's handler (moto),
and both must agree: the same counts, the same rejected rows with the same lines and reasons, the
same ignored columns, or the same reason to refuse the file."""

import csv
import io
from dataclasses import replace
from pathlib import Path
from unittest import mock

import pytest

from handlers.common.schema import DEFAULT_SCHEMA
from handlers.producer import csv_stream
from handlers.producer.check import ColumnMatch, FileChecked, FileRefused, RejectedRow, check_upload
from handlers.producer.dialect import FileFormat
from tests.handlers.producer_schemas import PRODUCTS

pytestmark = pytest.mark.long(seconds=30)

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
# A record over this is rejected unread; lowered from 1 MiB so that a file can hold one cheaply
# (the reason still names the limit the producer was loaded with).
RECORD_LIMIT = 2048
READ_LIMIT = csv_stream.MAX_RECORD_BYTES
MAX_DECOMPRESSED = 64 * 1024 * 1024


@pytest.fixture
def schema(request):
    """The default schema unless a test asks for another (`indirect=True`)."""
    return getattr(request, "param", DEFAULT_SCHEMA)


def checked(
    data: bytes, schema, max_upload_bytes: int = 64 * 1024 * 1024, name: str = "upload.csv"
) -> FileChecked | FileRefused:
    with mock.patch.object(csv_stream, "MAX_RECORD_BYTES", RECORD_LIMIT):
        return check_upload(
            io.BytesIO(data), len(data), schema, max_upload_bytes, name=name, max_decompressed_bytes=MAX_DECOMPRESSED
        )


def produced(deployment, data: bytes, key: str) -> FileChecked | FileRefused:
    """What the producer's handler made of the file, in the check's terms (its mapping aside)."""
    with mock.patch.object(csv_stream, "MAX_RECORD_BYTES", RECORD_LIMIT):
        job_id = deployment.upload(key, data)
    job = deployment.job(job_id)
    if job["status"] == "FAILED":
        return FileRefused(job["error"])
    listing = deployment.s3.list_objects_v2(Bucket=deployment.bucket, Prefix=f"reports/{job_id}/")
    rejects = []
    for part in sorted(o["Key"] for o in listing.get("Contents", [])):
        body = deployment.s3.get_object(Bucket=deployment.bucket, Key=part)["Body"].read().decode()
        rejects += [RejectedRow(int(r[0]), int(r[1]), r[2]) for r in list(csv.reader(io.StringIO(body)))[1:]]
    reasons: dict[str, int] = {}
    for reject in rejects:
        reasons[reject.reason] = reasons.get(reject.reason, 0) + 1
    return FileChecked(
        format=FileFormat.from_dict(job["format"]),
        columns=(),
        ignored=tuple(job["extraColumns"]),
        rows=int(job["rowsTotal"]),
        valid=int(job["rowsValid"]),
        rejected=int(job["rowsRejected"]),
        blank_lines=int(job["blankLines"]),
        rejects=tuple(rejects),
        reasons=reasons,
    )


def same_answer(check: FileChecked | FileRefused, producer: FileChecked | FileRefused) -> None:
    if isinstance(check, FileChecked):
        check = replace(check, columns=(), reasons=dict(sorted(check.reasons.items())))
    if isinstance(producer, FileChecked):
        producer = replace(producer, reasons=dict(sorted(producer.reasons.items())))
    assert check == producer


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.csv")), ids=lambda path: path.name)
def test_the_check_of_each_corpus_file_is_the_producers_answer(deployment, path):
    data = path.read_bytes()
    same_answer(checked(data, DEFAULT_SCHEMA), produced(deployment, data, f"uploads/{path.name}"))


USERS_FILE = (
    "\ufeff\r\n"  # a BOM, and a blank line before the header
    "Phone,E-Mail,notes,Nick_Name,name\r\n"
    "(01) 234-5678,Ann@Example.com,x,Ann A,Ann\r\n"
    "\r\n"
    "12,bob@example.com,,Bob B,Bob\r\n"  # a phone too short
    ',not an email,,"Carl\r\nC",Carl\r\n'  # a bad address, a quoted cell over two lines
    ",dee@example.com,,Dee D,\r\n"  # an empty name
    ",,,,\r\n"  # blank
    "1,2,3\r\n"  # too few fields
    f",eve@example.com,,Eve E,{'n' * (RECORD_LIMIT + 1)}\r\n"  # too long to read
    ",fay@example.com,,Fay F,Fay"
)


def test_the_check_maps_the_header_and_counts_what_the_producer_counts(deployment):
    data = USERS_FILE.encode()
    check = checked(data, DEFAULT_SCHEMA)
    assert isinstance(check, FileChecked)
    assert check.columns == (
        ColumnMatch("name", "name", 5),
        ColumnMatch("mail", "E-Mail", 2),
        ColumnMatch("phone", "Phone", 1),
    )
    assert check.ignored == ("notes", "Nick_Name")
    assert (check.rows, check.valid, check.rejected, check.blank_lines) == (7, 2, 5, 3)
    oversized = len(f",eve@example.com,,Eve E,{'n' * (RECORD_LIMIT + 1)}\r\n")
    assert check.rejects == (
        RejectedRow(2, 5, "phone is not an optional '+' and 6 to 15 digits"),
        RejectedRow(3, 6, "mail is not a valid email address (local@dotted.domain)"),
        RejectedRow(4, 8, "name is empty"),
        RejectedRow(5, 10, "has 3 fields; the header has 5"),
        RejectedRow(6, 11, f"record is {oversized} bytes long; records over {READ_LIMIT} bytes are not read"),
    )
    assert check.reasons == {reject.reason: 1 for reject in check.rejects}
    same_answer(check, produced(deployment, data, "uploads/users-mixed.csv"))


def test_the_check_answers_with_no_cell_of_the_file():
    data = USERS_FILE.encode()
    answer = repr(checked(data, DEFAULT_SCHEMA))
    cells = {cell for row in csv.reader(io.StringIO(USERS_FILE.lstrip("\ufeff"))) for cell in row[:5]} - {""}
    header = {"Phone", "E-Mail", "notes", "Nick_Name", "name"}
    assert [cell for cell in cells - header if len(cell) > 2 and cell in answer] == [], (
        "a cell of the file is in the answer"
    )


PRODUCTS_FILE = (
    "Item Code,NAME,price,qty,active,status,since,notes\n"
    "A-1,Lamp,12.50,+7,Yes,LIVE,2026-01-02,fragile\n"
    "B-2,Desk,-1,3,no,draft,,\n"  # a price below its minimum
    "C-3,Chair,4,three,,,,\n"  # a stock that is no whole number
    ",Stool,5,1,,,,\n"  # an empty key
    "\n"
    "D-4,Shelf,6,1,maybe,,,\n"  # a boolean spelled oddly
    "E-5,Bench,7,1,true,gone,,\n"  # an unknown status
    "F-6,Rack,8,1,true,live,2026-02-30,\n"  # no such date
    '"G-7","Table, round",9.999,,off,Retired,1999-12-31,\n'
)


@pytest.mark.parametrize("schema", [PRODUCTS], indirect=True)
def test_the_check_of_a_products_file_is_the_producers_answer(deployment, schema):
    data = PRODUCTS_FILE.encode()
    check = checked(data, schema)
    assert isinstance(check, FileChecked)
    assert [(c.column, c.spelling, c.position) for c in check.columns] == [
        ("sku", "Item Code", 1),
        ("title", "NAME", 2),
        ("price", "price", 3),
        ("stock", "qty", 4),
        ("active", "active", 5),
        ("since", "since", 7),
        ("status", "status", 6),
        ("at", None, None),
    ]
    assert (check.rows, check.valid, check.rejected, check.blank_lines, check.ignored) == (8, 2, 6, 1, ("notes",))
    assert [reject.reason.split(" (")[0] for reject in check.rejects] == [
        "price is below its minimum, 0",
        "stock is not a whole number",
        "sku is empty",
        "active is not a boolean",
        "status is not one of its 3 values",
        "since is not a date in ISO 8601 form",
    ]
    same_answer(check, produced(deployment, data, "uploads/products.csv"))


@pytest.mark.parametrize("schema", [PRODUCTS], indirect=True)
@pytest.mark.parametrize(
    "data",
    [
        b"price,title\n1,Lamp\n",  # no key column
        b"sku,title,price\nA-1,L\xe9mpe,1\n",  # not UTF-8
        b'sku,title,price\nA-1,"Lamp,1\n',  # an unclosed quote
        b"\n\n",  # no header
    ],
)
def test_a_file_the_producer_fails_is_refused_by_the_check_with_the_jobs_reason(deployment, schema, data):
    check = checked(data, schema)
    assert isinstance(check, FileRefused)
    same_answer(check, produced(deployment, data, "uploads/refused.csv"))


def test_a_file_over_the_stacks_size_is_refused_before_it_is_read(deployment, tmp_path):
    path = tmp_path / "users.csv"
    path.write_bytes(b"name,mail\nAnn,ann@example.com\n")
    deployment.producer.SETTINGS = replace(deployment.producer.SETTINGS, max_upload_bytes=20)
    with path.open("rb") as stream:
        check = check_upload(
            stream, path.stat().st_size, DEFAULT_SCHEMA, 20, name=path.name, max_decompressed_bytes=MAX_DECOMPRESSED
        )
    assert check == FileRefused(
        "file too large: 30 bytes; this stack ingests files of at most 20 bytes (maxUploadBytes)"
    )
    same_answer(check, produced(deployment, path.read_bytes(), "uploads/too-big.csv"))
