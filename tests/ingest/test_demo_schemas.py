"""`make run CONFIG=PATH`: the demo on a stack of any schema, the stack file's samples uploaded.

The tours run `python -m ingest demo --config-file …` in a process of its own, as `make run` does, on
the two stack files of `examples/`: a text key with decimal, integer, boolean and date columns, and
an integer key with enum, datetime and email columns. Each starts (and must stop) a stack of its own.
The other tests read the samples with the demo's own code, or are refused before any stack starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from handlers.common.schema import DEFAULT_SCHEMA, Schema, parse_schema
from ingest.commands.demo import first_valid_key
from local.project import stack_of_file, stack_settings
from tests.ingest.conftest import run_ingest
from tests.local.support import REPO_ROOT, local_processes

pytestmark = pytest.mark.long(seconds=60)

PRODUCTS = "examples/products/Pulumi.products.yaml"
DEVICES = "examples/devices/Pulumi.devices.yaml"
DEMO_TIMEOUT = 600


def _schema_of(config_file: str) -> Schema:
    path = REPO_ROOT / config_file
    return parse_schema(stack_settings(stack_of_file(path), path)["csv-ingest:schema"], "schema")


# --- the tour -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tour:
    """A stack file of `examples/`, and what its demo must show."""

    config_file: str
    stack: str
    noun: str
    sample: str
    counts: str
    """The sample's job, as the summary says it."""
    items: int
    key: str
    """The sample's first valid row's key."""
    answer: dict[str, str]
    """Fields of its item, as `get` prints them: each column's normal form, the latest row's."""


# One tour: the demo's path is the same for any stack file, and the devices sample (an integer key,
# an enum, datetimes) is ingested end to end by tests/ingest/test_own_schema.py.
TOURS = [
    Tour(
        PRODUCTS,
        "products",
        "product",
        "examples/products/products.csv",
        "COMPLETE_WITH_REJECTS, 10 rows, 6 valid, 4 rejected, 5 written, 1 superseded",
        items=5,
        key="TS-100",  # rows 1 and 9: the later row's item (84.90 → 84.9, yes → true)
        answer={
            "sku": "TS-100",
            "price": "84.9",
            "stock": "10",
            "active": "true",
            "launched": "2025-03-01",
            "row": "9",
        },
    ),
]


@pytest.mark.parametrize("tour", TOURS, ids=[tour.stack for tour in TOURS])
def test_the_demo_tours_a_stack_of_another_schema_and_leaves_nothing_running(tmp_path: Path, tour: Tour) -> None:
    state = tmp_path / "demo-state"

    result = run_ingest("demo", "--config-file", tour.config_file, "--state-dir", str(state), timeout=DEMO_TIMEOUT)

    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    out = result.stdout
    flags = f"--local --stack {tour.stack} --state-dir {state}"
    assert f"Starting the {tour.stack} stack in local mode" in out
    # The stack file's sample went up, and its job ended with the sample's counts.
    assert f"$ python -m ingest upload {tour.sample} {flags} --wait" in out
    summary = out[out.rindex("Summary") :].splitlines()
    assert any(line.startswith(f"  {tour.sample}: {tour.counts} (job ") for line in summary), summary
    # `get` of the first valid row's key answers its item typed: each column in its normal form.
    item = _fields(_answer(out, f"get {tour.key} {flags}"))
    assert {name: item.get(name) for name in tour.answer} == tour.answer
    # A page of the list, and a job with its rejects.
    assert _answer(out, f"list --limit 5 {flags}").splitlines()[-1] == f"{tour.items} {tour.noun}(s)"
    job = re.search(rf"^\$ python -m ingest job ([0-9a-f]{{32}}) {re.escape(flags)}$", out, re.MULTILINE)
    assert job is not None, out
    rejected = tour.counts.split(", ")[3].removesuffix(" rejected")
    assert f"{rejected} rejected row(s) of job {job[1]}" in _answer(out, f"rejects {job[1]} {flags}")
    assert f"yourself: make up CONFIG={tour.config_file} (README, Your own schema, end to end)." in out
    assert local_processes(str(state)) == []
    assert not (state / tour.stack / "outputs.json").exists()


def _answer(out: str, command: str) -> str:
    """What the demo printed after `$ python -m ingest COMMAND`, up to its next command line."""
    start = out.index(f"$ python -m ingest {command}\n") + len(f"$ python -m ingest {command}\n")
    end = out.find("\n$ ", start)
    return out[start : end if end != -1 else len(out)]


def _fields(text: str) -> dict[str, str]:
    """A `get` answer (`field  value` lines under a header and a rule) as a dict."""
    rows = [line.split(None, 1) for line in text.strip().splitlines()[2:]]
    return {row[0]: row[1].strip() if len(row) > 1 else "" for row in rows}


# --- the key it gets ------------------------------------------------------------------------------


def test_the_key_got_is_the_first_valid_rows_in_its_normal_form(tmp_path: Path) -> None:
    # GIVEN a file whose first rows are rejected: a bad email, then a key cell that is empty
    sample = tmp_path / "users.csv"
    sample.write_text("Name,E-Mail,Phone\nAnn,ann.example.com,\nBob,,\nCid, CID@Example.COM ,\nDee,dee@example.com,\n")

    key = first_valid_key((sample,), DEFAULT_SCHEMA)

    # THEN the key is the third row's, as the producer normalises it (never a rejected row's cell)
    assert key == "cid@example.com"


def test_the_key_got_is_typed_as_its_column_and_none_when_no_row_is_valid(tmp_path: Path) -> None:
    devices = _schema_of(DEVICES)
    invalid = tmp_path / "invalid.csv"
    invalid.write_text("serial,model\nx1,Sensor\n")
    refused = tmp_path / "refused.csv"
    refused.write_text("model\nSensor\n")  # no key column: the producer fails the file

    assert first_valid_key((REPO_ROOT / "examples/devices/devices.csv",), devices) == 1001
    assert first_valid_key((refused, invalid, REPO_ROOT / "examples/devices/devices.csv"), devices) == 1001
    assert first_valid_key((refused, invalid), devices) is None


# --- refused before a stack starts ----------------------------------------------------------------


def test_a_stack_file_with_no_csv_beside_it_is_refused_before_anything_starts(tmp_path: Path) -> None:
    config_file = tmp_path / "Pulumi.lonely.yaml"
    config_file.write_text((REPO_ROOT / PRODUCTS).read_text())
    state = tmp_path / "state"

    result = run_ingest("demo", "--config-file", str(config_file), "--state-dir", str(state))

    assert result.returncode == 2, result.stdout + result.stderr
    assert f"error: no .csv file beside {config_file}" in result.stderr
    assert result.stdout == ""
    assert not (state / "lonely").exists()


def test_rows_sizes_only_the_dev_demo() -> None:
    result = run_ingest("demo", "--config-file", PRODUCTS, "--rows", "500")

    assert result.returncode == 2
    assert "--rows sizes the dev demo's generated file" in result.stderr
