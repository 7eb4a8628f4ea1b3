"""A stack of any schema, from the command line, without a running stack: stack files beyond the
project's root (`--config-file`, `make plan CONFIG=`), the schema as a stack output, `upload --check`
(the producer's dry run of a local file), and dead letters shown by the schema's columns."""

from __future__ import annotations

import io
import json
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from handlers.common.chunks import Chunk, Row, Source
from handlers.common.schema import DEFAULT_SCHEMA, parse_schema
from ingest.commands.dlq import _describe, _show_letters
from ingest.targets import Target
from tests.ingest.conftest import COMMAND_TIMEOUT_SECONDS, run_ingest, write_csv
from tests.local.support import REPO_ROOT

pytestmark = pytest.mark.long(seconds=30)

PRODUCTS_FILE = REPO_ROOT / "examples" / "products" / "Pulumi.products.yaml"
PRODUCTS_CSV = REPO_ROOT / "examples" / "products" / "products.csv"
DEVICES_FILE = REPO_ROOT / "examples" / "devices" / "Pulumi.devices.yaml"
DEVICES_CSV = REPO_ROOT / "examples" / "devices" / "devices.csv"
USERS_CSV = REPO_ROOT / "tests" / "data" / "users.csv"
PRODUCTS_RELATIVE = "examples/products/Pulumi.products.yaml"
PRODUCTS = parse_schema(yaml.safe_load(PRODUCTS_FILE.read_text())["config"]["csv-ingest:schema"])
# `upload --check`'s exit codes (its --help documents them).
EXIT_FAILS, EXIT_REJECTS = 1, 4


def outputs_of(plan_stdout: str) -> dict[str, str]:
    """The `Outputs:` lines of `ingest plan`, by name."""
    lines = plan_stdout.splitlines()
    outputs = lines[lines.index("Outputs:") + 1 :]
    return dict(line.strip().split(": ", 1) for line in outputs if ": " in line)


# --- stack files beyond the root ---------------------------------------------------------------


def test_a_stack_file_beyond_the_root_is_planned_as_the_stack_its_name_names() -> None:
    result = run_ingest("plan", "--config-file", str(PRODUCTS_FILE.relative_to(REPO_ROOT)))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Stack products: ")
    outputs = outputs_of(result.stdout)
    assert outputs["productsTableName"].startswith("csv-ingest-data-products")
    assert "usersTableName" not in outputs
    # the schema is an output, as the functions receive it: the one declaration, canonical
    assert parse_schema(outputs["schema"], "schema") == PRODUCTS
    assert outputs["schema"] == PRODUCTS.to_json()


def test_stack_names_the_stack_a_stack_file_configures() -> None:
    result = run_ingest("plan", "--config-file", str(PRODUCTS_FILE), "--stack", "catalogue")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Stack catalogue: ")


def test_the_default_stack_exports_the_default_schema() -> None:
    result = run_ingest("plan")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Stack dev: ")
    assert outputs_of(result.stdout)["schema"] == DEFAULT_SCHEMA.to_json()


def test_a_stack_file_not_named_pulumi_stack_yaml_is_refused_saying_why(tmp_path: Path) -> None:
    misnamed = tmp_path / "products.yaml"
    shutil.copyfile(PRODUCTS_FILE, misnamed)

    for words in (["plan"], ["local", "up", "--state-dir", str(tmp_path / "state")]):
        result = run_ingest(*words, "--config-file", str(misnamed))

        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1, result.stderr
        assert "a stack file is named Pulumi.<stack>.yaml" in result.stderr
    assert not (tmp_path / "state").exists()


def test_a_stack_file_that_does_not_exist_is_refused_naming_it(tmp_path: Path) -> None:
    result = run_ingest("plan", "--config-file", str(tmp_path / "Pulumi.absent.yaml"))

    assert result.returncode == 2
    assert f"no stack file {tmp_path / 'Pulumi.absent.yaml'}" in result.stderr


def test_make_plan_config_plans_the_stack_of_that_file() -> None:
    # The venv is never (re)built here: `-o` marks it old ("the file itself will not be remade",
    # https://www.gnu.org/software/make/manual/html_node/Avoiding-Compilation.html).
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-o",
            ".venv/.installed",
            "plan",
            "CONFIG=examples/devices/Pulumi.devices.yaml",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
    )

    assert result.returncode == 0, result.stderr
    plan = result.stdout[result.stdout.index("Stack devices: ") :]
    assert "devicesTableName" in outputs_of(plan)


@contextmanager
def taken_port() -> Iterator[int]:
    """A port of 127.0.0.1 some other program listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def start_hint(stderr: str) -> str:
    """The command a port-in-use error says to run instead (the lines of `local up` and make aside)."""
    theirs = re.compile(r"local mode: starting|make(\[\d+\])?: \*\*\* ")
    (error,) = [line for line in stderr.splitlines() if not theirs.match(line)]
    assert error.startswith("error: port "), stderr
    return error.split("(0: any free one): ", 1)[1]


def test_make_up_config_starts_the_stack_of_that_file_and_its_hints_name_the_file(tmp_path: Path) -> None:
    # Stopped at once by a port in use: the stack file was read and the stack named by it, and the
    # hint to start it again is `make up` with the same CONFIG.
    with taken_port() as port:
        refused = subprocess.run(
            ["make", "--no-print-directory", "-o", ".venv/.installed", "up", f"CONFIG={PRODUCTS_RELATIVE}",
             f"PORT={port}", f"ARGS=--state-dir {tmp_path}"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )  # fmt: skip

    assert refused.returncode != 0
    assert "local mode: starting stack 'products'" in refused.stderr
    assert start_hint(refused.stderr) == f"make up CONFIG={PRODUCTS_RELATIVE} PORT=0 ARGS='--state-dir {tmp_path}'"


def test_local_up_config_file_hints_name_the_file(tmp_path: Path) -> None:
    with taken_port() as port:
        refused = run_ingest(
            "local", "up", "--config-file", PRODUCTS_RELATIVE, "--port", str(port), "--state-dir", str(tmp_path)
        )

    assert refused.returncode == 2
    hint = start_hint(refused.stderr)
    assert " local up --stack products --config-file examples/products/Pulumi.products.yaml --port 0 " in hint


# --- upload --check ------------------------------------------------------------------------------


def check(*args: str) -> subprocess.CompletedProcess[str]:
    """`upload --check` in a shell without AWS settings: it needs none, nor a running stack."""
    return run_ingest("upload", "--check", *args)


def test_check_of_a_valid_file_maps_its_header_counts_its_rows_and_exits_0() -> None:
    result = check("tests/data/users.csv")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "tests/data/users.csv against the users schema of stack dev (nothing uploaded):"
    mapping = [line.split() for line in lines[lines.index("Columns:") + 1 :][:5]]
    assert mapping[0] == ["column", "type", "from", "the", "file"]
    assert mapping[2:] == [
        ["name", "text", "←", "name", "(1)"],
        ["mail", "email", "←", "mail", "(2)"],
        ["phone", "phone", "←", "phone", "(3)"],
    ]
    assert "Rows: 10 read, 10 valid, 0 rejected, 0 blank lines" in lines
    assert lines[-1] == "Every row is valid: an upload would write 10 rows."


def test_check_of_products_says_which_rows_would_be_rejected_and_why_never_their_cells() -> None:
    result = check(str(PRODUCTS_CSV), "--config-file", str(PRODUCTS_FILE))

    assert result.returncode == EXIT_REJECTS, result.stderr
    text = result.stdout
    lines = text.splitlines()
    assert lines[0].endswith(" against the products schema of stack products (nothing uploaded):")
    mapping = [line.split() for line in lines[lines.index("Columns:") + 3 :][:6]]
    assert [row[0] for row in mapping] == ["sku", "title", "price", "stock", "active", "launched"]
    assert mapping[1] == ["title", "text", "←", "Product", "Name", "(2)"]
    assert mapping[3] == ["stock", "integer", "←", "Qty", "(4)"]
    assert "Ignored, not in the schema: Warehouse" in lines
    assert "Rows: 10 read, 6 valid, 4 rejected, 0 blank lines" in lines
    rejected = lines[lines.index("Rejected rows (4):") + 3 :][:4]
    assert [line.split(maxsplit=2) for line in rejected] == [
        ["5", "6", "price is below its minimum, 0"],
        ["6", "7", "active is not a boolean (true/t/yes/y/1/on or false/f/no/n/0/off)"],
        ["7", "8", "launched is not a date in ISO 8601 form (YYYY-MM-DD)"],
        ["8", "9", "sku is empty"],
    ]
    assert lines[-1] == "4 of 10 rows would be rejected (exit 4)."
    # no cell of a row: a name, a key, a price or a spelling the file used
    for cell in ("CP-300", "Camping stove", "-5", "maybe", "2023-02-30", "Water bottle", "TS-100"):
        assert cell not in text, cell
    assert result.stderr == ""


def test_check_json_is_one_object_with_the_mapping_counts_reasons_and_rows() -> None:
    result = check(str(DEVICES_CSV), "--config-file", str(DEVICES_FILE), "--json")

    assert result.returncode == EXIT_REJECTS, result.stderr
    (line,) = result.stdout.splitlines()
    checked = json.loads(line)
    assert (checked["stack"], checked["schema"], checked["uploaded"]) == ("devices", "devices", False)
    assert checked["columns"][0] == {
        "column": "serial",
        "type": "integer",
        "fileColumn": "Serial Number",
        "position": 1,
    }
    assert (checked["rows"], checked["valid"], checked["rejected"], checked["blankLines"]) == (8, 4, 4, 0)
    assert checked["reasons"]["serial is not a whole number (digits, an optional sign)"] == 1
    assert {"row": 6, "line": 7, "reason": "serial is not a whole number (digits, an optional sign)"} in checked[
        "rejects"
    ]
    assert checked["failure"] is None
    assert "x1006" not in line and "not-an-email" not in line


def test_check_of_a_file_the_producer_would_fail_gives_the_jobs_reason_and_exits_1(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "no-key.csv", ["Product Name,Price", "Kettle,39.00"])

    human = check(str(path), "--config-file", str(PRODUCTS_FILE))
    as_json = check(str(path), "--config-file", str(PRODUCTS_FILE), "--json")

    assert human.returncode == as_json.returncode == EXIT_FAILS
    assert "The producer would fail this file: incomplete header: missing sku column(s)" in human.stdout
    assert json.loads(as_json.stdout)["failure"].startswith("incomplete header: missing sku column(s)")
    assert "Kettle" not in human.stdout + as_json.stdout


def test_check_uploads_nothing_so_it_takes_no_wait(tmp_path: Path) -> None:
    result = check(str(USERS_CSV), "--wait")

    assert result.returncode == 2
    assert result.stderr.startswith("error: --check uploads nothing: it takes no --wait")


# --- dead letters ------------------------------------------------------------------------------


def dead_letter(schema_rows: list[Row], fingerprint: str) -> dict[str, Any]:
    chunk = Chunk(
        jobId="job-1",
        chunk=0,
        uploadedAtMs=1,
        tiebreak="0",
        source=Source("bucket", "uploads/f.csv", "v1"),
        expiresAt=None,
        schema=fingerprint,
        rows=tuple(schema_rows),
    )
    return {"MessageId": "m-1", "Body": chunk.encode(), "Attributes": {"ApproximateReceiveCount": "5"}}


def test_a_dead_letter_shows_its_rows_by_the_default_schemas_columns_as_before() -> None:
    rows = [Row(1, ("John Doe", "john@gmail.com", "9876543210")), Row(2, ("Alice", "alice@gmail.com", None))]

    letter = _describe(dead_letter(rows, DEFAULT_SCHEMA.fingerprint), lambda m, s: None, DEFAULT_SCHEMA)

    assert letter.first_rows == [
        {"row": 1, "email": "john@gmail.com", "name": "John Doe", "phone": "9876543210"},
        {"row": 2, "email": "alice@gmail.com", "name": "Alice", "phone": None},
    ]
    shown = io.StringIO()
    _show_letters([letter], _target(), shown)
    table = shown.getvalue().splitlines()
    header = next(n for n, line in enumerate(table) if line.split()[:1] == ["row"])
    assert table[header].split() == ["row", "email", "name", "phone"]
    assert table[header + 2].split() == ["1", "john@gmail.com", "John", "Doe", "9876543210"]


def test_a_dead_letter_of_products_shows_its_rows_by_their_columns_typed() -> None:
    rows = [Row(3, ("TS-100", "Trail shoe", "84.9", 10, True, "2025-03-01"))]

    letter = _describe(dead_letter(rows, PRODUCTS.fingerprint), lambda m, s: None, PRODUCTS)

    assert letter.first_rows == [
        {"row": 3, "sku": "TS-100", "title": "Trail shoe", "price": "84.9", "stock": 10, "active": True,
         "launched": "2025-03-01"}
    ]  # fmt: skip
    shown = io.StringIO()
    _show_letters([letter], _target(), shown)
    lines = shown.getvalue().splitlines()
    header = next(n for n, line in enumerate(lines) if line.split()[:1] == ["row"])
    assert lines[header].split() == ["row", "sku", "title", "price", "stock", "active", "launched"]
    assert lines[header + 2].split() == ["3", "TS-100", "Trail", "shoe", "84.9", "10", "true", "2025-03-01"]


def test_a_dead_letter_of_another_schema_shows_its_rows_as_they_are() -> None:
    # A chunk of another schema (the stack's schema changed since): its values without names.
    rows = [Row(1, ("a", "b"))]

    letter = _describe(dead_letter(rows, "0123456789abcdef"), lambda m, s: None, PRODUCTS)

    assert letter.first_rows == [{"row": 1, "values": ["a", "b"]}]
    shown = io.StringIO()
    _show_letters([letter], _target(), shown)
    assert "read with another schema than the stack's (0123456789abcdef)" in shown.getvalue()


def _target() -> Target:
    return Target(label="local stack test", outputs={}, region="eu-west-1", local=True, stack="test", session=None)  # type: ignore[arg-type]


def test_a_dead_letter_of_the_first_chunk_format_shows_its_named_rows() -> None:
    # Chunks of format 1 dead-lettered by an upgraded worker (which refuses them): rows were objects.
    body = {
        "v": 1,
        "jobId": "job-1",
        "chunk": 0,
        "rows": [{"row": 1, "email": "a@b.example", "name": "A", "phone": None}],
    }
    message = {"MessageId": "m-1", "Body": json.dumps(body), "Attributes": {}}

    letter = _describe(message, lambda m, s: None, DEFAULT_SCHEMA)

    assert letter.first_rows == body["rows"]
    assert letter.other_schema == "none: an older chunk format"
    shown = io.StringIO()
    _show_letters([letter], _target(), shown)
    lines = shown.getvalue().splitlines()
    header = next(n for n, line in enumerate(lines) if line.split()[:1] == ["row"])
    assert lines[header].split() == ["row", "email", "name", "phone"]
